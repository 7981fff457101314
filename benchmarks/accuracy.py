"""Are the tool's GPU joules right? Around the same generate window, compares the meter's
figure with (1) the NVML total-energy counter read by this script itself, independently of
the meter, and (2) the integral of the power the meter's sampler recorded.

    python benchmarks/accuracy.py --model llama-3.2-1b --batch 8 --prompt-tokens 256 --new-tokens 256 --device cuda

Goals: within 1% of the independent counter, within 5% of the power integral. Needs a GPU
with an energy counter; on a CPU it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_workload_arguments, build_workload  # noqa: E402

from mlflow_energy.meter.energy_meter import EnergyMeter  # noqa: E402
from mlflow_energy.meter.gpu import NvmlGpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2, help="generate calls per window")
    args = parser.parse_args()
    work = build_workload(args)
    if not work.device.startswith("cuda"):
        print("accuracy: no GPU on this machine, nothing to compare (the CPU figures come from CodeCarbon).")
        return
    import pynvml

    pynvml.nvmlInit()
    gpus = NvmlGpus()
    handles = [d.handle for d in gpus.devices]
    meter = EnergyMeter(work.sync, 0.1, None, gpus)
    work.timed(1)  # warm-up
    print(f"accuracy: {work.description}, {args.windows} windows of {args.calls} calls")
    print(f"{'window':>6} {'meter J':>10} {'own counter J':>14} {'ratio':>7} {'power integral J':>17} {'ratio':>7}")
    for i in range(args.windows):
        work.sync()
        own_start = sum(pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles)
        with meter.window(f"accuracy_{i}") as window:
            for _ in range(args.calls):
                work.call()
        own_j = (sum(pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles) - own_start) / 1000.0
        m = window.measurement
        integral = sum(meter.sampler.power_integral_j(f"gpu{d.cuda_index}", window.start_s, window.end_s) or 0.0
                       for d in gpus.devices)  # fmt: skip
        print(f"{i + 1:>6} {m.gpu_total_j:>10.1f} {own_j:>14.1f} {m.gpu_total_j / own_j:>7.4f} {integral:>17.1f} "
              f"{m.gpu_total_j / integral:>7.4f}")  # fmt: skip
    meter.close()


if __name__ == "__main__":
    main()
