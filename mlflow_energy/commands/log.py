"""``mlflow-energy log DIR``, and the step every run ends with: a result folder logged to MLflow
once, and its summary printed."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from mlflow_energy.bench import stages
from mlflow_energy.bench.result import BenchResult, ResultFileError, Status
from mlflow_energy.commands.exits import EXIT_CONFIG_ERROR, EXIT_RUN_FAILED, EXIT_TRACKING_ERROR, fail
from mlflow_energy.store.uris import is_server, redact_in, redact_uri, run_path, ui_address


def ui_hint(uri: str, address: str) -> str:
    """How to open ``address`` (a page of the MLflow UI): on a server, the link; for a local
    store, the command that starts the UI, and the link on it."""
    if is_server(uri):
        return address
    return f"mlflow ui --backend-store-uri {redact_uri(uri)}, then open {address}"


def log_and_report(
    out_dir: Path,
    tracking_uri: str,
    experiment: str,
    run_name: str | None,
    extra_tags: dict[str, str] | None = None,
    project_run_id: str | None = None,
) -> tuple[int, str | None]:
    """Logs the result in ``out_dir`` (once; into ``project_run_id``, of ``experiment``, under
    `mlflow run`) and prints its summary: (exit code, run id)."""
    from mlflow_energy.record.writer import LogRequest, log_result, log_time_totals
    from mlflow_energy.report.console import print_summary

    result = BenchResult.read(out_dir)
    if LogRequest.read(out_dir) is None:  # the first attempt's: `log DIR --tracking-uri ELSEWHERE` must not replace it
        LogRequest(tracking_uri, experiment, run_name, extra_tags or {}).write(out_dir)
    started = time.monotonic()
    try:
        logged = log_result(result, out_dir, tracking_uri, experiment, run_name, extra_tags, project_run_id)
    except Exception as exc:  # the measurement is safe on disk; say how to log it later
        print_summary(result, f"{out_dir} (not in MLflow)", None)
        message = (f"could not log to MLflow at {tracking_uri} ({type(exc).__name__}: {exc}); the result is saved "
                   f"in {out_dir}, log it later with: mlflow-energy log {out_dir}")  # fmt: skip
        print(f"mlflow-energy: error: {redact_in(message, tracking_uri)}", file=sys.stderr)
        return EXIT_TRACKING_ERROR, None
    if result.stages_s and not logged.already_logged:
        result.stages_s[stages.LOGGING] = time.monotonic() - started
        with contextlib.suppress(Exception):  # the run is complete without them: timing must not fail it
            log_time_totals(tracking_uri, logged.run_id, result.stages_s)
    where = f"{redact_uri(tracking_uri)}, experiment {experiment!r}, run {logged.run_id} ({logged.status})"
    if logged.already_logged:
        where += "; it was already there, nothing was logged again"
    page = ui_address(tracking_uri, run_path(logged.experiment_id, logged.run_id))
    print_summary(result, where, ui_hint(tracking_uri, page))
    return (0 if result.status == Status.FINISHED else EXIT_RUN_FAILED), logged.run_id


def log_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="mlflow-energy log", description="Log a saved result folder to MLflow, once.")
    parser.add_argument("output_dir", type=Path, help="a run's output folder holding result.json")
    parser.add_argument("--tracking-uri", help="default: where the run was to be logged")
    parser.add_argument("--experiment", help="default: the experiment the run was to be logged in")
    args = parser.parse_args(argv)
    from mlflow_energy.record.writer import LogRequest

    try:
        tracking = BenchResult.read(args.output_dir).config.tracking
    except ResultFileError as exc:
        fail(str(exc), EXIT_CONFIG_ERROR)
    saved = LogRequest.read(args.output_dir) or LogRequest(tracking.uri, tracking.experiment, tracking.run_name, {})
    uri, experiment = args.tracking_uri or saved.tracking_uri, args.experiment or saved.experiment
    # Sweep membership (parent run, sweep id) only means something in the store it was made for.
    same_place = (uri, experiment) == (saved.tracking_uri, saved.experiment)
    code, _ = log_and_report(args.output_dir, uri, experiment, saved.run_name, saved.tags if same_place else {})
    raise SystemExit(code)
