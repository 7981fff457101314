"""Which sweep jobs start the next job's standby processes while they log (commands/sweep_job.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_energy.bench.interrupt import STOP
from mlflow_energy.commands.sweep_job import Job, _next_job_follows
from mlflow_energy.sweep.state import SweepState


def job(num: int, points: int | None, parallel_jobs: int = 1) -> Job:
    sweep = SweepState("sweep", "parent", "1", "sqlite:///mlflow.db", points, [], parallel_jobs)
    return Job(sweep, Path("sweep"), Path("sweep") / str(num), num, "point", "point", "hash", 0)


@pytest.mark.parametrize(
    ("num", "points", "parallel_jobs", "follows"),
    [(0, 3, 1, True), (1, 3, 1, True),
     (2, 3, 1, False),  # the last: nothing would take them
     (0, None, 1, True),  # a sweeper that decides as it goes
     (0, 3, 2, False)],  # a parallel job's standbys wait for its GPU lease
)  # fmt: skip
def test_the_next_job_is_prepared_only_where_this_process_runs_it(num: int, points: int | None, parallel_jobs: int,
                                                                  follows: bool) -> None:  # fmt: skip
    assert _next_job_follows(job(num, points, parallel_jobs)) is follows


def test_an_interrupted_sweep_prepares_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STOP, "requested", True)
    assert not _next_job_follows(job(0, 3))
