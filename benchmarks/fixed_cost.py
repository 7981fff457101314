"""Where the wait between the command and the number goes: `mlflow-energy run` twice into one
store (the first creates it; the second is a user's next measurement after changing a knob) and
a sweep point of the same configuration (`mlflow-energy run -m sweep.replicates=2`, a grid of one
point measured twice: the second replicate is a point inside a sweep, after another), each
with its stages' wall time (the run's ``time/*_s`` metrics) and its fixed cost (wall time minus
the load, warm-up, idle baseline and measured windows). Goals: a single run's fixed cost at most
8 s on a 2-core CPU and 5 s on a GPU machine.

    python benchmarks/fixed_cost.py -- model=llama-3.2-1b workload=standard quality=off device=cuda

Everything after ``--`` is passed to the three commands.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow_energy.bench import stages
from mlflow_energy.store.names import TIME_PREFIX


def _times(folder: Path) -> dict[str, float]:
    """The stage times of the newest measured run in the folder's store (of a sweep: its last point)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mlflow-energy")
    runs = [r for r in client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])
            if "time/wall_s" in r.data.metrics]  # fmt: skip
    metrics = runs[0].data.metrics
    return {k.removeprefix(TIME_PREFIX).removesuffix("_s"): v for k, v in metrics.items()
            if k.startswith(TIME_PREFIX)}  # fmt: skip


def _command(folder: Path, overrides: list[str], multirun: bool = False) -> tuple[dict[str, float], float]:
    """The command's stage times and its wall time as this script saw it (seconds)."""
    command = [sys.executable, "-m", "mlflow_energy", "run", *(["-m", "sweep.replicates=2"] if multirun else []),
               f"tracking.uri=sqlite:///{folder}/mlflow.db",
               f"hydra.run.dir={folder}/out", f"hydra.sweep.dir={folder}/multirun", *overrides]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"the tool failed:\n{proc.stderr[-3000:]}")
    return _times(folder), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="passed to every command (after --)")
    common = parser.parse_args().overrides
    fixed = {}
    with tempfile.TemporaryDirectory() as single, tempfile.TemporaryDirectory() as sweep:
        commands = [("single run, new store", single, False), ("single run, next one", single, False),
                    ("sweep point", sweep, True)]  # fmt: skip
        for label, folder, multirun in commands:
            times, wall = _command(Path(folder), common, multirun)
            parts = ", ".join(f"{s} {times[s]:.2f}" for s in stages.ORDER if times.get(s, 0.0) >= 0.005)
            print(f"{label}: fixed cost {times[stages.FIXED]:.2f} s of {times[stages.WALL]:.2f} s logged "
                  f"({wall:.2f} s for the whole command); {parts}", flush=True)  # each as it comes: GPU runs are long
            fixed[label] = times[stages.FIXED]
    print(f"next single run's fixed cost / sweep point's: {fixed['single run, next one'] / fixed['sweep point']:.2f}")


if __name__ == "__main__":
    main()
