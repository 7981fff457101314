"""What the jobs of a sweep share on disk: the sweep's state, which every job reads, and each
job's outcome, which the sweep gathers at its end."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

log = logging.getLogger("mlflow_energy.sweep")

SWEEP_FILE = "mlflow_energy_sweep.json"
OUTCOME_FILE = "mlflow_energy_outcome.json"
PROGRESS_LOG = "sweep.log"


@dataclass
class SweepState:
    """What every job of a sweep needs to know. ``started_s`` is wall-clock seconds."""

    sweep_id: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    points: int | None  # jobs (grid points x replicates); None when another sweeper decides as it goes
    swept_keys: list[str]
    parallel_jobs: int
    started_s: float = field(default_factory=time.time)
    replicates: int = 1
    kept_dir: str = ""  # this sweep's KeptResults folder (absolute), shared by its launches
    one_process: bool = False  # Hydra's basic launcher: every job in the launching process, one after another

    def write(self, sweep_dir: Path) -> None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, sweep_dir: Path) -> SweepState | None:
        path = sweep_dir / SWEEP_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else None

    def progress(self, sweep_dir: Path, message: str) -> None:
        """Logged by the job and appended to ``<sweep dir>/sweep.log`` (one place for all jobs)."""
        log.info(message)
        with (sweep_dir / PROGRESS_LOG).open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {message}\n")


class Outcome(str, Enum):
    """How a job ended; the value is what its outcome file and the parent's counts hold."""

    FINISHED = "finished"
    FAILED = "failed"
    SKIPPED = "skipped"  # already measured (bench.resume)
    NOT_LOGGED = "not_logged"  # measured, but the tracking server did not answer: kept on disk

    def __str__(self) -> str:
        return self.value


@dataclass
class PointOutcome:
    """How one job (a replicate of a grid point) ended: finished | failed | skipped (already
    measured) | not_logged (measured, but the tracking server did not answer: the result is
    kept in ``result_dir``). ``name`` is the grid point's; its replicates share ``point_hash``."""

    num: int
    name: str
    status: Outcome
    run_id: str | None
    config_hash: str | None
    error: str | None = None
    seconds: float = 0.0
    point_hash: str | None = None
    replicate: int = 0
    result_dir: str | None = None  # the folder holding its result.json

    def __post_init__(self) -> None:
        self.status = Outcome(self.status)  # read back from JSON as a string

    def write(self, job_dir: Path) -> None:
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / OUTCOME_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, job_dir: Path) -> PointOutcome:
        return cls(**json.loads((job_dir / OUTCOME_FILE).read_text()))


def read_outcomes(sweep_dir: Path) -> list[PointOutcome]:
    outcomes = [PointOutcome.read(p.parent) for p in sweep_dir.rglob(OUTCOME_FILE)]
    return sorted(outcomes, key=lambda o: o.num)


def count_outcomes(outcomes: list[PointOutcome]) -> dict[Outcome, int]:
    """Jobs per status, every status present."""
    return {status: sum(o.status == status for o in outcomes) for status in Outcome}


@dataclass(frozen=True)
class SweepEnd:
    """How a sweep ended, for the command's last sentence and exit code. ``parent_status``: the
    status the parent run was closed with, its report logged (KILLED when interrupted, FAILED
    while results are only on disk, else FINISHED); None when the tracking server did not
    answer, so the parent stays open."""

    parent_run_id: str
    tracking_uri: str
    counts: dict[Outcome, int]
    interrupted: bool
    parent_status: str | None = None
    comparison_url: str | None = None  # the sweep's comparison in the MLflow UI, where it was saved
