"""Which sweep jobs start the next job's standby processes while they log (commands/sweep_job.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_energy.bench.interrupt import STOP
from mlflow_energy.commands.sweep_job import Job, _next_job_follows
from mlflow_energy.sweep.state import SweepState


def job(num: int, points: int | None, one_process: bool = True) -> Job:
    sweep = SweepState("sweep", "parent", "1", "sqlite:///mlflow.db", points, [], 1, one_process=one_process)
    return Job(sweep, Path("sweep"), Path("sweep") / str(num), num, "point", "point", "hash", 0)


@pytest.mark.parametrize(
    ("num", "points", "one_process", "follows"),
    [(0, 3, True, True), (1, 3, True, True),
     (2, 3, True, False),  # the last: nothing would take them
     (0, None, True, True),  # a sweeper that decides as it goes
     (0, 3, False, False)],  # joblib, Ray, SLURM: jobs side by side, or in processes of their own
)  # fmt: skip
def test_the_next_job_is_prepared_only_where_this_process_runs_it(num: int, points: int | None, one_process: bool,
                                                                  follows: bool) -> None:  # fmt: skip
    assert _next_job_follows(job(num, points, one_process)) is follows


def test_an_interrupted_sweep_prepares_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STOP, "requested", True)
    assert not _next_job_follows(job(0, 3))
