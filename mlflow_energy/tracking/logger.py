"""Log a BenchResult to MLflow. Runs in the parent process only, after the child has ended."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mlflow_energy.bench.result import CODECARBON_DIR, TIMELINE_FILE, BenchResult, Status
from mlflow_energy.bench.summary import gpu_j_by_device
from mlflow_energy.config import as_dict, flatten
from mlflow_energy.meter.sampler import TimelineSample, read_timeline_csv
from mlflow_energy.report.headline import basis_label, description, trust_verdict
from mlflow_energy.report.timeline import plot_timeline
from mlflow_energy.tracking import filters, names
from mlflow_energy.tracking.uris import redact_in, redact_uri

_BATCH = 1000  # MLflow's per-request limit on metrics in log_batch
LOG_REQUEST_FILE = "logging.json"
log = logging.getLogger("mlflow_energy")


class TrackingError(RuntimeError):
    """The tracking store cannot be used: one sentence naming tracking.uri and the fix."""


def check_reachable(tracking_uri: str) -> None:
    """A tracking server must answer /health within seconds (MLflow's own client retries for
    minutes before it gives up)."""
    if not tracking_uri.startswith(("http://", "https://")):
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


@contextmanager
def _store_creation_lock(tracking_uri: str) -> Iterator[None]:
    """Serialises the first use of a SQLite store between processes: MLflow creates and
    migrates the database on first use, and two processes doing it at once break it for good
    (``table _alembic_tmp_tags already exists``). Other stores need no lock."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    database = Path(tracking_uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare_experiment(tracking_uri: str, experiment: str) -> str:
    """Creates the store and experiment before any measurement, so a bad URI fails in seconds;
    safe when several processes start on a new store at once."""
    from mlflow.tracking import MlflowClient

    check_reachable(tracking_uri)
    try:
        with _store_creation_lock(tracking_uri):
            client = MlflowClient(tracking_uri=tracking_uri)
            found = client.get_experiment_by_name(experiment)
            return found.experiment_id if found else client.create_experiment(experiment)
    except Exception as exc:
        message = (f"tracking.uri={tracking_uri!r} cannot be used ({type(exc).__name__}: {str(exc)[:200]}); "
                   "check the path or that the server is running.")  # fmt: skip
        raise TrackingError(redact_in(message, tracking_uri)) from None


@dataclass(frozen=True)
class LoggedRun:
    experiment_id: str
    run_id: str
    status: str
    already_logged: bool = False  # the store held this result before the call; nothing was logged


def _tags(result: BenchResult) -> dict[str, str]:
    env = result.environment
    gpus = env.get("gpus") or []
    tags = {
        names.TAG_STATUS: result.status.value,
        names.TAG_CONFIG_HASH: result.config_hash,
        names.TAG_GPU_COUNT: str(len(gpus)),
    }
    if result.device:  # unknown when the run failed before it chose one
        tags[names.TAG_DEVICE] = result.device
    if env.get("cpu_model"):
        tags[names.TAG_CPU_MODEL] = str(env["cpu_model"])
    if gpus:
        tags[names.TAG_GPU_MODEL] = ", ".join(sorted({g["name"] for g in gpus}))
        tags[names.TAG_GPU_DRIVER] = str(env.get("gpu_driver"))
    for domain, source in (env.get("energy_sources") or {}).items():
        tags[names.TAG_SOURCE_PREFIX + domain] = source
    for package, version in (env.get("packages") or {}).items():
        if version:
            tags[names.TAG_VERSION_PREFIX + package] = version
    if result.error:
        tags[names.TAG_ERROR] = result.error[:5000]
    if result.problems:
        tags[names.TAG_PROBLEMS] = "; ".join(result.problems)[:5000]
    return {**tags, **_trust_tags(result)}


def _trust_tags(result: BenchResult) -> dict[str, str]:
    """What the headline counts, whether it can be trusted (a column users can show), and the
    run description that says both."""
    a = result.assessment
    tags = {
        names.TAG_TRUST: trust_verdict(a)[:5000],
        names.TAG_DESCRIPTION: description(result),
        names.TAG_REPLICATE: str(result.config.sweep.replicate),
    }
    if result.point_hash:
        tags[names.TAG_POINT_HASH] = result.point_hash
    if a is not None and a.headline_sources:
        tags[names.TAG_HEADLINE] = basis_label(a)
    if a is not None and a.below_noise_floor:
        keys = ", ".join(names.metric_key(f) for f in a.below_noise_floor)
        tags[names.TAG_BELOW_NOISE_FLOOR] = f"{keys}: below the noise floor (noise exceeds the value), not logged"
    return tags


def run_params(result: BenchResult) -> dict[str, str]:
    """The run's params: the flattened config (``tracking.*`` left out) and what the run learnt."""
    params = {k: str(v) for k, v in flatten(as_dict(result.config)).items() if not k.startswith("tracking.")}
    params[names.PARAM_RESOLVED_DEVICE] = str(result.device)
    if result.model_parameters is not None:
        params[names.PARAM_MODEL_PARAMETERS] = str(result.model_parameters)
    if result.int8_layers is not None:
        params[names.PARAM_INT8_LAYERS] = str(result.int8_layers)
    return params


@dataclass(frozen=True)
class LogRequest:
    """Where and how a result folder is to be logged: saved beside result.json before the first
    attempt, so that ``mlflow-energy log DIR`` later logs it the same way (a sweep point keeps
    its parent, sweep id and name)."""

    tracking_uri: str
    experiment: str
    run_name: str | None
    tags: dict[str, str]

    def write(self, folder: Path) -> None:
        (folder / LOG_REQUEST_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, folder: Path) -> LogRequest | None:
        path = folder / LOG_REQUEST_FILE
        try:
            return cls(**json.loads(path.read_text())) if path.is_file() else None
        except (OSError, ValueError, TypeError):  # damaged: the result's own config still says where
            return None


def log_result(
    result: BenchResult,
    out_dir: Path,
    tracking_uri: str,
    experiment: str,
    run_name: str | None,
    extra_tags: dict[str, str] | None = None,
) -> LoggedRun:
    """Create (or, under ``mlflow run``, fill) the MLflow run and log everything in ``out_dir``.
    ``extra_tags`` carry a sweep's parent run and sweep id. A result is logged once: when the
    experiment already holds it completely, that run is returned (``already_logged``); a run
    left incomplete by an earlier attempt is replaced. If logging fails, the run it created is
    deleted (the result stays on disk) and the error is raised."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    # `mlflow run` creates the run and hands its id down; it also ends it.
    outer_run_id = os.environ.get("MLFLOW_RUN_ID")
    if outer_run_id:
        run = client.get_run(outer_run_id)
    else:
        experiment_id = prepare_experiment(tracking_uri, experiment)
        existing = first_run(client, experiment_id, filters.holding_result(result.result_id))
        if existing is not None and existing.data.tags.get(names.TAG_LOGGING) == names.LOGGING_COMPLETE:
            return LoggedRun(existing.info.experiment_id, existing.info.run_id, existing.info.status, True)
        if existing is not None:  # an attempt that broke off half way
            client.delete_run(existing.info.run_id)
        run = client.create_run(experiment_id, start_time=result.started_ms, run_name=run_name,
                                tags={names.TAG_RESULT_ID: result.result_id})  # fmt: skip
    try:
        status = _fill_run(client, run.info.run_id, result, out_dir, extra_tags or {}, end_run=not outer_run_id)
    except BaseException:
        if not outer_run_id:
            _discard(client, run.info.run_id)
        raise
    return LoggedRun(run.info.experiment_id, run.info.run_id, status)


def _fill_run(client: Any, run_id: str, result: BenchResult, out_dir: Path, extra_tags: dict[str, str],
              end_run: bool) -> str:  # fmt: skip
    from mlflow.entities import Metric, Param, RunTag

    now_ms = int(time.time() * 1000)
    summary = result.summary
    figures = {
        **(names.summary_metrics(summary) if summary else {}),
        **names.per_gpu_energy_metrics(gpu_j_by_device(result)),
    }
    metrics = [Metric(k, v, now_ms, 0) for k, v in figures.items()]
    timeline_path = out_dir / TIMELINE_FILE
    timeline = read_timeline_csv(timeline_path) if timeline_path.is_file() else []
    metrics += _timeline_metrics(timeline)
    params = [Param(k, v) for k, v in run_params(result).items()]
    tags = [RunTag(k, v) for k, v in {**_tags(result), **extra_tags}.items()]
    client.log_batch(run_id, params=params, tags=tags)
    for i in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + _BATCH])
    _log_artifacts(client, run_id, result, timeline, out_dir)
    status = names.RUN_FINISHED if result.status == Status.FINISHED else names.RUN_FAILED
    if end_run:
        client.set_terminated(run_id, status, end_time=result.ended_ms or now_ms)
    client.set_tag(run_id, names.TAG_LOGGING, names.LOGGING_COMPLETE)  # last: a run without it is redone
    return status


def first_run(client: Any, experiment_id: str, filter_string: str, order_by: list[str] | None = None) -> Any:
    """The first run of the experiment that matches ``filter_string``; None when there is none."""
    runs = client.search_runs([experiment_id], filter_string=filter_string, order_by=order_by, max_results=1)
    return runs[0] if runs else None


def _discard(client: Any, run_id: str) -> None:
    """Deletes a run whose logging failed; if the store cannot even do that, the next attempt
    finds the incomplete run by its result id and replaces it."""
    try:
        client.delete_run(run_id)
    except Exception:  # noqa: BLE001 - the original failure is the one to report
        log.debug("could not delete the incomplete run %s", run_id)


def _timeline_metrics(timeline: list[TimelineSample]) -> list[Any]:
    from mlflow.entities import Metric

    steps: dict[str, int] = {}
    metrics = []
    for sample in timeline:
        if sample.device.startswith("gpu") and sample.power_w is not None:
            key = names.timeline_power_metric(sample.device)
            steps[key] = steps.get(key, -1) + 1
            metrics.append(Metric(key, sample.power_w, sample.timestamp_ms, steps[key]))
    return metrics


def _log_artifacts(
    client: Any, run_id: str, result: BenchResult, timeline: list[TimelineSample], out_dir: Path
) -> None:
    """The artifacts; the config in them shows tracking.uri without credentials."""
    tracking = replace(result.config.tracking, uri=redact_uri(result.config.tracking.uri))
    shown = replace(result, config=replace(result.config, tracking=tracking))
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        (staging / names.ARTIFACT_CONFIG).write_text(yaml.safe_dump(as_dict(shown.config), sort_keys=False))
        (staging / names.ARTIFACT_ENVIRONMENT).write_text(json.dumps(result.environment, indent=2))
        shown.write(staging)
        if result.error:
            (staging / names.ARTIFACT_ERROR).write_text(result.error + "\n")
        if timeline:
            plot_timeline(timeline, result, staging / names.ARTIFACT_TIMELINE_PLOT)
        client.log_artifacts(run_id, str(staging))
    if (out_dir / TIMELINE_FILE).is_file():
        client.log_artifact(run_id, str(out_dir / TIMELINE_FILE))
    if (out_dir / CODECARBON_DIR).is_dir():
        client.log_artifacts(run_id, str(out_dir / CODECARBON_DIR), CODECARBON_DIR)


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


def find_finished_run(tracking_uri: str, experiment_id: str, config_hash: str) -> Any:
    """The latest FINISHED run of the experiment that measured this exact configuration."""
    from mlflow.tracking import MlflowClient

    return first_run(
        MlflowClient(tracking_uri=tracking_uri), experiment_id,
        filters.finished_config(config_hash), order_by=filters.NEWEST_FIRST,
    )  # fmt: skip


def log_refused(
    tracking_uri: str, experiment_id: str, run_name: str, overrides: list[str], error: str, extra_tags: dict[str, str]
) -> str:
    """A grid point refused before measuring (bad model, bad value) as a FAILED run with its error."""
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    from mlflow_energy.tracking.run_names import override_params

    client = MlflowClient(tracking_uri=tracking_uri)
    run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    tags = {**extra_tags, names.TAG_STATUS: Status.FAILED.value, names.TAG_ERROR: error[:5000]}
    params = override_params(overrides)
    client.log_batch(run_id, params=params, tags=[RunTag(k, v) for k, v in tags.items()])
    client.log_text(run_id, error + "\n", names.ARTIFACT_ERROR)
    client.set_terminated(run_id, names.RUN_FAILED)
    return run_id
