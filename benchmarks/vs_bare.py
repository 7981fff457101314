"""Is the tool as fast as a bare script? tokens/s of `mlflow-energy run` (its reported
throughput/tokens_per_s) against a bare generate loop with identical settings in this process,
alternating bare / tool / bare / tool / bare so drift hits both.

    python benchmarks/vs_bare.py --model llama-3.2-1b --batch 8 --prompt-tokens 256 --new-tokens 256 --device cuda

Everything after `--` is passed to the tool's runs (bench.* settings, for example).

Goal: tool / bare at least 0.97.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_workload_arguments, build_workload, run_tool  # noqa: E402

from mlflow_energy.bench.stats import describe  # noqa: E402


def tool_tokens_per_s(args: argparse.Namespace, dtype: str, folder: Path) -> float:
    overrides = [f"model.name={args.model}", f"model.weights={args.weights}", f"model.dtype={dtype}",
                 f"device={args.device}", f"workload.batch_size={args.batch}",
                 f"workload.prompt_tokens={args.prompt_tokens}", f"workload.new_tokens={args.new_tokens}",
                 "quality=off", *args.overrides]  # fmt: skip
    return run_tool(folder, overrides)["summary"]["throughput_tokens_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    parser.add_argument("--calls", type=int, default=3, help="generate calls per bare measurement")
    parser.add_argument("--rounds", type=int, default=2, help="tool runs (bare runs: one more)")
    parser.add_argument("overrides", nargs="*", help="more overrides for mlflow-energy run (after --)")
    args = parser.parse_args()
    work = build_workload(args)
    work.timed(1)
    bare, tool = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds + 1):
            bare.append(args.calls * work.tokens_per_call / work.timed(args.calls))
            if i < args.rounds:
                tool.append(tool_tokens_per_s(args, work.dtype, Path(tmp) / f"tool{i}"))
    ratio = describe(tool).mean / describe(bare).mean
    print(f"vs_bare: {work.description}")
    print(f"bare tokens/s {', '.join(f'{v:.1f}' for v in bare)}; tool tokens/s {', '.join(f'{v:.1f}' for v in tool)}")
    print(f"tool/bare tokens/s: {ratio:.4f}")


if __name__ == "__main__":
    main()
