"""The reference the tool must match: a bare generate loop timed by hand, with GPU energy read
straight from the NVML total-energy counter around the same loop (no mlflow-energy meter).

    python benchmarks/bare.py --model llama-3.2-1b --batch 8 --prompt-tokens 256 --new-tokens 256

Prints tokens/s and GPU J/token (gross) to compare with `mlflow-energy run` on the same settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_workload_arguments, build_workload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    parser.add_argument("--calls", type=int, default=5, help="measured generate calls, after one warm-up")
    args = parser.parse_args()
    work = build_workload(args)
    work.timed(1)  # full-length warm-up, identical to the measured calls
    handles = []
    if work.device.startswith("cuda"):
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    read = lambda: sum(pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles) / 1000.0  # noqa: E731
    start_j = read() if handles else 0.0
    seconds = work.timed(args.calls)
    gpu_j = (read() - start_j) if handles else None
    tokens = args.calls * work.tokens_per_call
    print(f"bare: {work.description}, {args.calls} calls")
    print(f"bare tokens/s {tokens / seconds:.1f}")
    if gpu_j is not None:
        print(f"bare GPU J/token {gpu_j / tokens:.4f} ({gpu_j:.1f} J over {seconds:.2f} s, {gpu_j / seconds:.0f} W)")


if __name__ == "__main__":
    main()
