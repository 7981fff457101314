"""How repeatable is the tool's J/token? Runs `mlflow-energy run` itself with 5 measured
windows and prints the coefficient of variation of the per-window J/token (the run's
measurement/energy_cv), plus the spread of tokens/s.

    python benchmarks/repeatability.py -- model=llama-3.2-1b workload=standard quality=off

Goal: CV at most 2% on a GPU. Everything after `--` is passed to `mlflow-energy run`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("overrides", nargs="*", help="overrides for mlflow-energy run (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "mlflow_energy", "run", f"bench.min_repetitions={args.repetitions}",
                   "bench.min_duration_s=0.001", f"hydra.run.dir={tmp}/out", f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                   *args.overrides]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"the run failed:\n{proc.stderr[-3000:]}")
        result = json.loads((Path(tmp) / "out" / "result.json").read_text())
    s = result["summary"]
    per_window = [r["measurement"] for r in result["repetitions"]]
    print(f"repeatability: {' '.join(args.overrides) or 'defaults'}, {len(per_window)} windows on {result['device']}")
    print(f"J/token {s['energy_j_per_token']:.5g} (std {s['energy_j_per_token_std']:.3g}); "
          f"CV {100 * s['measurement_energy_cv']:.2f}%; tokens/s {s['throughput_tokens_per_s']:.1f} "
          f"(std {s['throughput_tokens_per_s_std']:.3g})")  # fmt: skip


if __name__ == "__main__":
    main()
