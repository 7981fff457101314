"""Do serving windows count the load or the waves? Runs one serving point with every request
asking for the same length (``serving.lengths=same``), then with chat-like lengths (``chat``, the
default), and prints for each the requests each steady-state window counted, their coefficient
of variation, and the J/token with its stated interval. Equal requests in a closed loop finish
together: windows count 0, 32, 0, 32; drawn lengths spread the ends over the windows.

    python benchmarks/serving_waves.py -- model=llama-3.2-1b workload.prompt_tokens=256 serving.max_tokens=128 serving.concurrency=32 serving.duration_s=30 device=cuda

Everything after ``--`` is passed to both runs (``scenario=serving`` is added); ``--lengths``
picks the runs (default: same, then chat).
"""  # noqa: E501 (the example command stays on one line, to copy as it is)

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_tool  # noqa: E402

from mlflow_energy.bench.result import BenchResult  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", nargs="+", default=["same", "chat"], help="serving.lengths of each run")
    parser.add_argument("overrides", nargs="*", help="passed to both runs (after --)")
    args = parser.parse_args()
    common = ["scenario=serving", *args.overrides]
    for lengths in args.lengths:
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            result = BenchResult.from_dict(run_tool(Path(folder), [*common, f"serving.lengths={lengths}"]))
        serving, s = result.serving, result.summary
        assert serving is not None and s is not None, "a serving run has its requests and a summary"
        counts = [sum(r.window == k for r in serving.requests) for k in range(len(serving.windows))]
        spread = statistics.pstdev(counts) / statistics.mean(counts) if counts and statistics.mean(counts) else 0.0
        asked = sorted({r.max_tokens for r in serving.requests if r.max_tokens is not None})
        interval = (f"[{s.energy_j_per_token_ci95_low:.4g}-{s.energy_j_per_token_ci95_high:.4g}]"
                    if s.energy_j_per_token_ci95_low is not None else "no interval")  # fmt: skip
        print(f"serving.lengths={lengths}: {len(asked)} distinct max_tokens asked ({asked[0]}-{asked[-1]}); "
              f"requests per window {counts} (coefficient of variation {spread:.2f}); "
              f"{s.energy_j_per_token:.4g} J/token {interval}; {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
