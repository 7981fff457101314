"""What does a grid point cost beyond its measured work? Runs a real tiny-model sweep and splits
each point's wall time into the measured work (idle baseline, warm-up, prefill and generate
windows) and the fixed cost around it (process start, imports, model load, logging, report).

    python benchmarks/sweep_cost.py                # 12 points: dtype x batch x new tokens
    python benchmarks/sweep_cost.py --points 4

Goal: at most 2 s of fixed cost per point.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRIDS = {
    12: ["model.dtype=float32,bfloat16", "workload.batch_size=1,2,4", "workload.new_tokens=8,16"],
    4: ["model.dtype=float32,bfloat16", "workload.batch_size=1,4"],
}
BENCH = ["bench=quick", "bench.idle_s=0.2", "bench.min_repetitions=2", "bench.min_duration_s=0.5"]


def measured_work_s(result: dict) -> tuple[float, float]:
    """(model load s, measured work s) from a point's result.json."""
    windows = [result["idle"], *result["warmup"], result["prefill"]["measurement"],
               *(r["measurement"] for r in result["repetitions"])]  # fmt: skip
    work = sum(w["duration_s"] for w in windows if w)
    return result["load"]["duration_s"], work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, choices=sorted(GRIDS), default=12)
    parser.add_argument("--keep", type=Path, help="keep the sweep's folders here (for results_table.py)")
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "mlflow-energy")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = subprocess.run([cli, "run", "-m", *BENCH, *GRIDS[args.points]], cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"the sweep failed:\n{proc.stderr[-3000:]}")
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        outcomes = [json.loads(p.read_text()) for p in Path(tmp).rglob("mlflow_energy_outcome.json")]
        print(f"{'point':<55} {'wall s':>7} {'load s':>7} {'work s':>7} {'fixed s':>8}")
        fixed_all = []
        for outcome in sorted(outcomes, key=lambda o: o["num"]):
            result_path = next(Path(tmp).rglob(f"{outcome['num']}/result.json"))
            load, work = measured_work_s(json.loads(result_path.read_text()))
            fixed = outcome["seconds"] - work
            fixed_all.append(fixed)
            print(f"{outcome['name']:<55} {outcome['seconds']:>7.2f} {load:>7.2f} {work:>7.2f} {fixed:>8.2f}")
    mean_fixed = sum(fixed_all) / len(fixed_all)
    print(f"{len(outcomes)} points in {wall:.1f} s of wall time; fixed cost per point {mean_fixed:.2f} s on average "
          f"(sweep start and report: {wall - sum(o['seconds'] for o in outcomes):.1f} s)")


if __name__ == "__main__":
    main()
