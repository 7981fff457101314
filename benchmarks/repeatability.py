"""How repeatable is the tool's J/token? Runs `mlflow-energy run` itself with 5 measured
windows and prints the coefficient of variation of the per-window J/token (the run's
measurement/energy_cv), plus the spread of tokens/s.

Then, for an eager run without quantization, it times as many windows of the same calls with
a bare generate loop in this process: the CV of their tokens/s is the host's own noise, the
floor under the tool's figure.

    python benchmarks/repeatability.py -- model=llama-3.2-1b workload=standard quality=off

Goal: CV at most 2% on a GPU. Everything after `--` is passed to `mlflow-energy run`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import build_workload, run_tool  # noqa: E402

from mlflow_energy.bench.stats import describe  # noqa: E402


def bare_tokens_per_s_cv(result: dict) -> float | None:
    """CV of tokens/s over bare windows shaped like the run's; None where the bare loop cannot
    reproduce the run (another backend, quantization)."""
    config = result["config"]
    if config["backend"]["name"] != "eager" or config["model"]["quantization"] != "none":
        return None
    m, w = config["model"], config["workload"]
    args = argparse.Namespace(model=m["name"], weights=m["weights"], dtype=m["dtype"], device=result["device"],
                              batch=w["batch_size"], prompt_tokens=w["prompt_tokens"], new_tokens=w["new_tokens"])  # fmt: skip
    work = build_workload(args)
    calls = len(result["repetitions"][0]["request_s"])
    work.timed(1)  # full-length warm-up, as the tool does
    speeds = [calls * work.tokens_per_call / work.timed(calls) for _ in result["repetitions"]]
    return describe(speeds).cv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("overrides", nargs="*", help="overrides for mlflow-energy run (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"bench.min_repetitions={args.repetitions}", "bench.min_duration_s=0.001", *args.overrides]
        result = run_tool(Path(tmp), overrides)
    s = result["summary"]
    per_window = [r["measurement"] for r in result["repetitions"]]
    print(f"repeatability: {' '.join(args.overrides) or 'defaults'}, {len(per_window)} windows on {result['device']}")
    print(f"J/token {s['energy_j_per_token']:.5g} (std {s['energy_j_per_token_std']:.3g}); "
          f"CV {100 * s['measurement_energy_cv']:.2f}%; tokens/s {s['throughput_tokens_per_s']:.1f} "
          f"(std {s['throughput_tokens_per_s_std']:.3g}, CV {100 * s['throughput_tokens_per_s_std'] / s['throughput_tokens_per_s']:.2f}%)")  # fmt: skip
    bare_cv = bare_tokens_per_s_cv(result)
    if bare_cv is not None:
        print(f"bare loop, same windows in this process: tokens/s CV {100 * bare_cv:.2f}% (the host's noise floor)")


if __name__ == "__main__":
    main()
