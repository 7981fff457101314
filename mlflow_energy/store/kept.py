"""A tracking server that stops answering, and the results that wait on disk meanwhile.

MLflow's client retries an unreachable server for about four minutes per request; the tool
instead waits ``tracking.wait_s`` seconds for it (``wait_for_server``) and asks MLflow for a
few seconds of retries (``bound_mlflow_retries``). A result that still cannot be logged stays
on disk, and a sweep remembers where, so that launching the same sweep again logs it instead
of measuring it again. Each job of a sweep records its output folder before it measures, and
the run that holds the result once it is logged:

    <launch folder>/.mlflow_energy/kept/<sweep id>/<config hash>.json    {"out_dir": "...", "run_id": null}

The launch folder is the working directory of the launching command (jobs on other machines
get its absolute path). An entry without a run is a result waiting to be logged: it was
measured while the server did not answer, or the sweep was stopped before it could log it.
An entry with a run tells a job, while the server does not answer, that its point was
measured already.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mlflow_energy.bench.result import BenchResult, ResultFileError
from mlflow_energy.store.reads import TrackingError, check_reachable

KEPT_ROOT = Path(".mlflow_energy") / "kept"
# MLflow's defaults are 7 retries, a back-off factor of 2 and 120 s per request.
_MLFLOW_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def bound_mlflow_retries() -> None:
    """Limits MLflow's HTTP retries in this process (and the processes it starts) to seconds;
    values the user set are kept."""
    for key, value in _MLFLOW_HTTP_LIMITS.items():
        os.environ.setdefault(key, value)


def store_failures() -> tuple[type[Exception], ...]:
    """For ``except``: what a tracking store raises when it fails or stops answering
    (MlflowException, or requests' connection errors, which are OSErrors)."""
    from mlflow.exceptions import MlflowException

    return MlflowException, OSError


def wait_for_server(tracking_uri: str, wait_s: float) -> bool:
    """Whether the tracking server answers, asking every second for up to ``wait_s`` seconds.
    A store that is not a server (SQLite, a folder) always answers."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            check_reachable(tracking_uri)
            return True
        except TrackingError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(1.0)


@dataclass(frozen=True)
class KeptResult:
    """A sweep job's result folder and, once logged, the run that holds it."""

    out_dir: str
    run_id: str | None = None

    def read(self) -> BenchResult | None:
        """The result, or None where the folder no longer holds a readable one."""
        try:
            return BenchResult.read(Path(self.out_dir))
        except ResultFileError:
            return None


@dataclass(frozen=True)
class KeptResults:
    """The results of one sweep, by config hash, kept across its launches."""

    folder: Path

    @classmethod
    def of_sweep(cls, launch_dir: Path, sweep_id: str) -> KeptResults:
        return cls(launch_dir.resolve() / KEPT_ROOT / sweep_id)

    def get(self, config_hash: str) -> KeptResult | None:
        path = self.folder / f"{config_hash}.json"
        try:
            return KeptResult(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # none, or damaged: as if none (the result stays on disk)
            return None

    def put(self, config_hash: str, kept: KeptResult) -> None:
        """Atomic: a job stopped while writing leaves the previous entry, never half of one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{config_hash}.json"
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps(asdict(kept)))
        os.replace(staging, path)
