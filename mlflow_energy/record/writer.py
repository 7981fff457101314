"""Every write to MLflow the tool makes: a benchmark result (in the parent process only, after
the child has ended), a refused grid point, a sweep's parent run and its report, a registered
model version and its alias, and a ``track()`` block. What they write is built elsewhere
(record/run_record.py, report/, registry/register.py); reads are in store/reads.py."""

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
from typing import Any, Protocol

import yaml

from mlflow_energy.bench import stages
from mlflow_energy.bench.result import CODECARBON_DIR, TIMELINE_FILE, BenchResult, Status
from mlflow_energy.bench.summary import gpu_j_by_device
from mlflow_energy.config import as_dict
from mlflow_energy.inference.server import SERVER_LOG
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import TimelineSample, read_timeline_csv, write_timeline_csv
from mlflow_energy.record.datasets import log_datasets, run_datasets
from mlflow_energy.record.run_record import run_params, run_tags, timeline_metrics
from mlflow_energy.record.ui_view import VIEW_TAG_PREFIX, View, experiment_note, views_to_prune
from mlflow_energy.report import run_card
from mlflow_energy.report.headline import load_label
from mlflow_energy.report.requests import plot_latency_cdf, write_requests_csv
from mlflow_energy.report.timeline import phase_legend, plot_timeline
from mlflow_energy.store import filters, names
from mlflow_energy.store.reads import TrackingError, check_reachable, first_run
from mlflow_energy.store.uris import redact_in, redact_uri

_BATCH = 1000  # MLflow's per-request limit on metrics in log_batch
LOG_REQUEST_FILE = "logging.json"
log = logging.getLogger("mlflow_energy")


@contextmanager
def _store_creation_lock(tracking_uri: str) -> Iterator[None]:
    """Serialises the first use of a SQLite store between processes: MLflow creates and
    migrates the database on first use, and two processes doing it at once break it for good
    (``table _alembic_tmp_tags already exists``). Other stores need no lock."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    database = Path(tracking_uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{database}.lock"):
        yield


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
    project_run_id: str | None = None,
) -> LoggedRun:
    """Create the MLflow run (or fill ``project_run_id``, the one `mlflow run` created) and log
    everything in ``out_dir``. ``extra_tags`` carry a sweep's parent run and sweep id. A result is
    logged once: when the experiment already holds it completely, that run is returned
    (``already_logged``); a run left incomplete by an earlier attempt is replaced. If logging
    fails, the run it created is deleted (the result stays on disk) and the error is raised."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if project_run_id:
        run = client.get_run(project_run_id)
        client.set_tag(project_run_id, names.TAG_RESULT_ID, result.result_id)  # as the runs the tool creates carry it
        if run_name:  # else it keeps the name `mlflow run` gave it (its --run-name, or MLflow's pick)
            client.update_run(project_run_id, name=run_name)
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
        # `mlflow run` ends its run itself, by the command's exit code.
        status = _fill_run(client, run.info.run_id, result, out_dir, extra_tags or {}, end_run=not project_run_id)
    except BaseException:
        if not project_run_id:
            _discard(client, run.info.run_id)
        raise
    return LoggedRun(run.info.experiment_id, run.info.run_id, status)


def log_time_totals(tracking_uri: str, run_id: str, stages_s: dict[str, float]) -> None:
    """After the logging itself: its time, the run's wall time and its fixed cost."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    now_ms = int(time.time() * 1000)
    totals = stages.with_totals(stages_s)
    figures = {k: totals[k] for k in (stages.LOGGING, stages.WALL, stages.FIXED)}
    MlflowClient(tracking_uri=tracking_uri).log_batch(
        run_id, metrics=[Metric(k, v, now_ms, 0) for k, v in names.stage_metrics(figures).items()])


def _fill_run(client: Any, run_id: str, result: BenchResult, out_dir: Path, extra_tags: dict[str, str],
              end_run: bool) -> str:  # fmt: skip
    from mlflow.entities import Metric, Param, RunTag

    now_ms = int(time.time() * 1000)
    summary = result.summary
    figures = {
        **(names.summary_metrics(summary) if summary else {}),
        **names.per_gpu_energy_metrics(gpu_j_by_device(result)),
        **names.stage_metrics(result.stages_s),
    }
    metrics = [Metric(k, v, now_ms, 0) for k, v in figures.items()]
    timeline_path = out_dir / TIMELINE_FILE
    timeline = read_timeline_csv(timeline_path) if timeline_path.is_file() else []
    phases = result.windows()
    metrics += timeline_metrics(timeline, phases)
    params = [Param(k, v) for k, v in run_params(result).items()]
    tags = [RunTag(k, v) for k, v in {**run_tags(result), **_phase_tag(timeline, phases), **extra_tags}.items()]
    client.log_batch(run_id, params=params, tags=tags)
    _log_metrics(client, run_id, metrics)
    log_datasets(client, run_id, run_datasets(result))
    _log_artifacts(client, run_id, result, timeline, out_dir)
    status = names.RUN_FINISHED if result.status == Status.FINISHED else names.RUN_FAILED
    if end_run:
        client.set_terminated(run_id, status, end_time=result.ended_ms or now_ms)
    client.set_tag(run_id, names.TAG_LOGGING, names.LOGGING_COMPLETE)  # last: a run without it is redone
    return status


def _phase_tag(timeline: list[TimelineSample], phases: list[tuple[str, Measurement]]) -> dict[str, str]:
    return {names.TAG_PHASES: phase_legend(phases)} if timeline and phases else {}


def _log_metrics(client: Any, run_id: str, metrics: list[Any]) -> None:
    """``metrics`` in requests of at most MLflow's limit."""
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH])


def _discard(client: Any, run_id: str) -> None:
    """Deletes a run whose logging failed; if the store cannot even do that, the next attempt
    finds the incomplete run by its result id and replaces it."""
    try:
        client.delete_run(run_id)
    except Exception:  # noqa: BLE001 - the original failure is the one to report
        log.debug("could not delete the incomplete run %s", run_id)


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
            subject = f"{result.config.model.name} on {result.device}"
            plot_timeline(timeline, result.windows(), subject, staging / names.ARTIFACT_TIMELINE_PLOT)
        if result.serving is not None:
            write_requests_csv(result.serving.requests, result.serving.windows, staging / names.ARTIFACT_REQUESTS_CSV)
            title = f"{result.config.model.name}, {load_label(result.config.serving)}: latency"
            plot_latency_cdf(result.serving.requests, title, staging / names.ARTIFACT_LATENCY_CDF)
        client.log_artifacts(run_id, str(staging))
    if result.summary is not None:
        client.log_table(run_id, run_card.table(result), names.ARTIFACT_ENERGY_CARD)
    if (out_dir / TIMELINE_FILE).is_file():
        client.log_artifact(run_id, str(out_dir / TIMELINE_FILE))
    if (out_dir / SERVER_LOG).is_file():
        client.log_artifact(run_id, str(out_dir / SERVER_LOG))
    if (out_dir / CODECARBON_DIR).is_dir():
        client.log_artifacts(run_id, str(out_dir / CODECARBON_DIR), CODECARBON_DIR)


def log_refused(
    tracking_uri: str, experiment_id: str, run_name: str, overrides: list[str], error: str, extra_tags: dict[str, str]
) -> str:
    """A grid point refused before measuring (bad model, bad value) as a FAILED run with its error."""
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    from mlflow_energy.record.run_names import override_params

    client = MlflowClient(tracking_uri=tracking_uri)
    run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    tags = {**extra_tags, names.TAG_STATUS: Status.FAILED.value, names.TAG_ERROR: error[:5000]}
    params = override_params(overrides)
    client.log_batch(run_id, params=params, tags=[RunTag(k, v) for k, v in tags.items()])
    client.log_text(run_id, error + "\n", names.ARTIFACT_ERROR)
    client.set_terminated(run_id, names.RUN_FAILED)
    return run_id


def mark_job_lost(tracking_uri: str, run_id: str, cause: str) -> None:
    """A sweep job's run that the job logged itself before its engine lost it: the cause, as a tag."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).set_tag(run_id, names.TAG_JOB_LOST, cause[:5000])


def open_sweep_parent(tracking_uri: str, experiment_id: str, sweep_id: str, run_name: str,
                      params: list[Any]) -> tuple[str, bool]:  # fmt: skip
    """The sweep's parent run, created with its params or, for a sweep launched again, found and
    set RUNNING: (run id, whether it was found). TrackingError when the store fails meanwhile."""
    from mlflow.tracking import MlflowClient

    from mlflow_energy.store.kept import store_failures

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        parent = first_run(client, experiment_id, filters.sweep_parent(sweep_id))
        if parent is not None:
            client.update_run(parent.info.run_id, status=names.RUN_RUNNING)
            return parent.info.run_id, True
        tags = {names.TAG_SWEEP_ID: sweep_id, names.TAG_SWEEP_PARENT: "true"}
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        client.log_batch(run.info.run_id, params=params)
        return run.info.run_id, False
    except store_failures() as exc:
        message = (f"the tracking store at {tracking_uri} failed while the sweep's parent run was set up "
                   f"({type(exc).__name__}: {str(exc)[:200]}); check that it answers and run the same command "
                   "again.")  # fmt: skip
        raise TrackingError(redact_in(message, tracking_uri)) from None


class ParentRunReport(Protocol):
    """What a sweep's report puts on its parent run (sweep/report.py's ``SweepReport``)."""

    metrics: dict[str, float]
    tags: dict[str, str]
    folder: Path


def log_sweep_report(client: Any, parent_run_id: str, report: ParentRunReport, status: str | None,
                     view: View | None, experiment_line: str | None) -> None:  # fmt: skip
    """The report's files, metrics and tags on the parent run; the comparison ``view`` on the
    experiment and its colours on the runs, the tool's oldest views pruned, and
    ``experiment_line`` in the experiment's description while this is its newest sweep; the
    parent closed with ``status`` when given."""
    from mlflow.entities import Metric, RunTag

    now_ms = int(time.time() * 1000)  # a resumed sweep's counts replace the last launch's
    client.log_batch(parent_run_id, metrics=[Metric(k, v, now_ms, 0) for k, v in report.metrics.items()],
                     tags=[RunTag(k, v) for k, v in report.tags.items()])  # fmt: skip
    client.log_artifacts(parent_run_id, str(report.folder))
    if view is not None:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
        client.set_experiment_tag(experiment_id, VIEW_TAG_PREFIX + view.key, view.tag)
        for run_id, colour in view.run_colours.items():
            client.set_tag(run_id, names.TAG_RUN_COLOUR, colour)
        experiment_tags = client.get_experiment(experiment_id).tags  # pruning leaves the description alone
        for key in views_to_prune(experiment_tags):
            client.delete_experiment_tag(experiment_id, key)
        newest = first_run(client, experiment_id, filters.SWEEP_PARENTS, order_by=filters.NEWEST_FIRST)
        if experiment_line and newest is not None and newest.info.run_id == parent_run_id:
            note = experiment_note(experiment_tags.get(names.TAG_DESCRIPTION, ""), experiment_line)
            client.set_experiment_tag(experiment_id, names.TAG_DESCRIPTION, note)
    if status is not None:
        client.set_terminated(parent_run_id, status)


def log_model_version(tracking_uri: str, source_run: Any, name: str, python_model: Path, code_paths: list[Path],
                      model_config: dict[str, Any], artifacts: dict[str, str], tags: dict[str, str],
                      description: str) -> str:  # fmt: skip
    """The model as a pyfunc in a run of its own (tagged with the run it was measured in), then a
    registered version with its evidence tags and description: the version number."""
    import mlflow
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per file is noise
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(experiment_id=source_run.info.experiment_id, run_name=f"register {name}",
                          tags={names.VERSION_SOURCE_RUN: source_run.info.run_id}):  # fmt: skip
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(python_model), artifacts=artifacts,
            code_paths=[str(p) for p in code_paths], model_config=model_config,
            pip_requirements=["torch", "transformers", "accelerate", "mlflow", "safetensors"],
        )  # fmt: skip
    version = mlflow.register_model(info.model_uri, name, tags=tags)
    MlflowClient(tracking_uri=tracking_uri).update_model_version(name, version.version, description=description)
    return str(version.version)


def set_alias(client: Any, name: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(name, alias, version)


def log_to_active_run(metrics: dict[str, float], tags: dict[str, str], timeline: list[TimelineSample],
                      phases: list[tuple[str, Measurement]], failed: bool = False) -> str:  # fmt: skip
    """A ``track()`` block: metrics, tags and the power timeline (stepped metrics, CSV, plot with
    ``phases`` shaded) on the active run, or on a new one it ends (FAILED when the block raised).
    The run id."""
    import mlflow

    started = mlflow.active_run() is None
    run = mlflow.start_run() if started else mlflow.active_run()
    assert run is not None  # started above when none was active
    try:
        mlflow.log_metrics(metrics)
        mlflow.set_tags({**tags, **_phase_tag(timeline, phases)})
        _log_metrics(mlflow.MlflowClient(), run.info.run_id, timeline_metrics(timeline, phases))
        with tempfile.TemporaryDirectory() as folder:
            write_timeline_csv(timeline, Path(folder) / TIMELINE_FILE)
            if timeline:
                plot_timeline(timeline, phases, "mlflow_energy.track() block",
                              Path(folder) / names.ARTIFACT_TIMELINE_PLOT)  # fmt: skip
            mlflow.log_artifacts(folder)
    finally:
        if started:
            mlflow.end_run(names.RUN_FAILED if failed else names.RUN_FINISHED)
    return run.info.run_id


def log_evaluation(run_id: str, metrics: dict[str, float], tags: dict[str, str], record: dict[str, Any] | None,
                   artifact: str, dataset_name: str | None, dataset_digest: str | None,
                   model_id: str | None) -> str | None:  # fmt: skip
    """The energy evaluator's figures on the evaluation run, each metric linked to the dataset and
    model as MLflow's own evaluators link theirs, and ``record`` as a JSON artifact: its URI."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    now = int(time.time() * 1000)
    linked = [Metric(k, v, now, 0, model_id=model_id, dataset_name=dataset_name, dataset_digest=dataset_digest,
                     run_id=run_id) for k, v in metrics.items()]  # fmt: skip
    client.log_batch(run_id, metrics=linked, tags=[RunTag(k, v) for k, v in tags.items()])
    if record is None:
        return None
    client.log_dict(run_id, record, artifact)
    return f"{client.get_run(run_id).info.artifact_uri}/{artifact}"
