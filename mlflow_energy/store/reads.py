"""The tracking store as the tool reads it: whether it answers, the run `mlflow run` created for
this command, the runs it holds, and the hardware class a run was measured on. Every write is in
record/writer.py."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mlflow_energy.store import filters, names
from mlflow_energy.store.uris import is_server, redact_in


class TrackingError(RuntimeError):
    """The tracking store cannot be used: one sentence naming tracking.uri and the fix."""


def check_reachable(tracking_uri: str) -> None:
    """A tracking server must answer /health within seconds (MLflow's own client retries for
    minutes before it gives up)."""
    if not is_server(tracking_uri):
        return
    import urllib.request

    try:
        urllib.request.urlopen(_health_url(tracking_uri), timeout=5)
    except (OSError, ValueError) as exc:
        raise TrackingError(
            redact_in(f"the tracking server at {tracking_uri} does not answer ({exc}); start it or fix tracking.uri.",
                      tracking_uri)  # fmt: skip
        ) from None


def _health_url(tracking_uri: str) -> str:
    """``<server>/health`` without the URI's credentials: the probe needs none, and urllib would
    read ``user:password@host`` as a host name."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(tracking_uri)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, f"{parts.path.rstrip('/')}/health", "", ""))


@dataclass(frozen=True)
class ProjectRun:
    """The run `mlflow run` created before starting this command (an MLproject entry point): the
    tool fills it rather than creating its own, in the experiment `mlflow run` chose."""

    run_id: str
    experiment: str


def project_run(tracking_uri: str) -> ProjectRun | None:
    """The run `mlflow run` handed down in MLFLOW_RUN_ID, read before anything is measured; None
    outside `mlflow run`. TrackingError when ``tracking_uri`` does not hold it."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return None
    from mlflow.tracking import MlflowClient

    check_reachable(tracking_uri)
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment_id = client.get_run(run_id).info.experiment_id
        return ProjectRun(run_id, client.get_experiment(experiment_id).name)
    except Exception as exc:
        message = (f"tracking.uri={tracking_uri!r} does not hold run {run_id}, which `mlflow run` created for this "
                   f"command ({type(exc).__name__}); under `mlflow run` leave tracking.uri unset, it follows "
                   "MLFLOW_TRACKING_URI.")  # fmt: skip
        raise TrackingError(redact_in(message, tracking_uri)) from None


def first_run(client: Any, experiment_id: str, filter_string: str, order_by: list[str] | None = None) -> Any:
    """The first run of the experiment that matches ``filter_string``; None when there is none."""
    runs = client.search_runs([experiment_id], filter_string=filter_string, order_by=order_by, max_results=1)
    return runs[0] if runs else None


def search_experiment_runs(
    client: Any, experiment: str, query: str, sweep_id: str | None = None, order_by: list[str] | None = None
) -> tuple[str, list[Any]]:
    """(experiment id, runs matching ``query``, of one sweep when ``sweep_id`` is given);
    LookupError when the experiment does not exist."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(f"there is no experiment named {experiment!r}; check --experiment.")
    runs = client.search_runs([found.experiment_id], filter_string=filters.in_sweep(query, sweep_id), order_by=order_by)
    return found.experiment_id, runs


def all_runs(client: Any, experiment_ids: list[str], query: str) -> list[Any]:
    """Every run of the experiments that matches ``query``, page after page (a search returns
    at most 1,000 runs a page)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string=query, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def hardware_class(run: Any) -> str:
    """What the figures are comparable across: the GPU model where the run computed on a GPU,
    else the CPU model (a run that chose ``device=cpu`` on a GPU host is a CPU run)."""
    tags = run.data.tags
    if tags.get(names.TAG_GPU_MODEL) and tags.get(names.TAG_DEVICE) != "cpu":
        return f"gpu:{tags[names.TAG_GPU_MODEL]}"
    return f"cpu:{tags.get(names.TAG_CPU_MODEL, 'unknown')}"


def find_finished_run(tracking_uri: str, experiment_id: str, config_hash: str) -> Any:
    """The latest FINISHED run of the experiment that measured this exact configuration."""
    from mlflow.tracking import MlflowClient

    return first_run(
        MlflowClient(tracking_uri=tracking_uri), experiment_id,
        filters.finished_config(config_hash), order_by=filters.NEWEST_FIRST,
    )  # fmt: skip
