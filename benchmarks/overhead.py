"""Does measuring slow the work down? tokens/s of the same generate loop with the full meter
running (NVML counter windows, power-sampling thread, CodeCarbon tasks) and without, in one
process, alternating so that drift (clocks, temperature) hits both sides alike.

    python benchmarks/overhead.py --pairs 3                         # CPU, tiny model
    python benchmarks/overhead.py --model llama-3.2-1b --batch 8 --prompt-tokens 256 --new-tokens 256

Goal: at most 1% slowdown on GPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Workload, add_workload_arguments, build_workload  # noqa: E402

from mlflow_energy.bench.stats import describe  # noqa: E402
from mlflow_energy.meter.energy_meter import EnergyMeter  # noqa: E402
from mlflow_energy.meter.gpu import NvmlGpus  # noqa: E402
from mlflow_energy.meter.host import HostEnergy  # noqa: E402


def metered_tokens_per_s(work: Workload, calls: int, folder: Path) -> float:
    """tokens/s as the tool reports it: tokens over the duration of the measured window."""
    gpus = NvmlGpus() if work.device.startswith("cuda") else NvmlGpus(disabled_reason="CPU run")
    meter = EnergyMeter(work.sync, 0.1, HostEnergy("USA", None, folder), gpus)
    try:
        with meter.window("overhead") as window:
            for _ in range(calls):
                work.call()
                work.sync()  # the bench synchronizes after each call to time it
    finally:
        meter.close()
    return calls * work.tokens_per_call / window.measurement.duration_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    parser.add_argument("--pairs", type=int, default=3, help="bare/metered pairs (at least 3)")
    parser.add_argument("--calls", type=int, default=10, help="generate calls per side of a pair")
    args = parser.parse_args()
    if args.pairs < 3:
        parser.error("--pairs must be at least 3")
    work = build_workload(args)
    work.timed(2)  # warm-up identical to the measured calls
    print(f"overhead: {work.description}, {args.calls} calls per side, {args.pairs} pairs")
    print(f"{'pair':>4} {'bare tok/s':>12} {'metered tok/s':>14} {'ratio':>7}")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            # Alternate which side goes first so slow drift does not favour one.
            sides = ["bare", "metered"] if pair % 2 == 0 else ["metered", "bare"]
            speeds = {}
            for side in sides:
                if side == "bare":
                    speeds[side] = args.calls * work.tokens_per_call / work.timed(args.calls)
                else:
                    speeds[side] = metered_tokens_per_s(work, args.calls, Path(tmp))
            ratios.append(speeds["metered"] / speeds["bare"])
            print(f"{pair + 1:>4} {speeds['bare']:>12.1f} {speeds['metered']:>14.1f} {ratios[-1]:>7.4f}")
    stats = describe(ratios)
    print(
        f"metered/bare tokens/s: mean {stats.mean:.4f} (95% CI {stats.ci95_low:.4f}-{stats.ci95_high:.4f}); "
        f"slowdown {100 * (1 - stats.mean):.2f}%"
    )


if __name__ == "__main__":
    main()
