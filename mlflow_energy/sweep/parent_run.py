"""A sweep's parent run at the end: its report built (sweep/report.py) and logged with it
(record/writer.py), and its status; and the same report rebuilt from the store later."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlflow_energy.record.ui_view import (
    TESTED_UI_VERSIONS,
    View,
    ui_version,
    view_key,
    view_path,
    view_state,
    view_tag,
    view_url,
)
from mlflow_energy.store import filters, names
from mlflow_energy.store.uris import run_path
from mlflow_energy.sweep.answer import experiment_line, sweep_answer
from mlflow_energy.sweep.comparison import comparison
from mlflow_energy.sweep.report import PointRow, SweepReport, build_report
from mlflow_energy.sweep.state import Outcome, PointOutcome, SweepEnd, SweepState, count_outcomes

log = logging.getLogger("mlflow_energy.sweep")


def finish_sweep(
    state: SweepState, outcomes: list[PointOutcome], sweep_dir: Path, wait_s: float, interrupted: bool
) -> SweepEnd:
    """Closes the parent run with its report: KILLED when the sweep was interrupted, FAILED while
    results are only on disk, FINISHED otherwise. Left open when the tracking server does not
    answer within ``wait_s``, or stops answering while the report is logged."""
    from mlflow.tracking import MlflowClient

    from mlflow_energy.store.kept import store_failures, wait_for_server

    counts = count_outcomes(outcomes)
    end = SweepEnd(state.parent_run_id, state.tracking_uri, counts, interrupted)
    if not wait_for_server(state.tracking_uri, wait_s):
        return end
    status = names.RUN_KILLED if interrupted else names.RUN_FAILED if counts[Outcome.NOT_LOGGED] else names.RUN_FINISHED
    client = MlflowClient(tracking_uri=state.tracking_uri)
    try:
        report = build_report(client, state, outcomes, sweep_dir / "report")
        comparison_url = _log_report(client, state, report, status)
    except store_failures():
        return end
    done = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items())
    log.info("sweep %s done: %s; report on parent run %s (%s)", state.sweep_id, done, state.parent_run_id, status)
    return replace(end, parent_status=status, comparison_url=comparison_url)


def _log_report(client: Any, state: SweepState, report: SweepReport, status: str | None = None) -> str | None:
    """Logs the report on the parent run with its description (the answer) and, where the MLflow
    UI is a version the comparison view was tested with, the view and the experiment's line
    pointing at it: the view's URL, None without one."""
    from mlflow_energy.record.writer import log_sweep_report

    view = None
    if ui_version(state.tracking_uri) in TESTED_UI_VERSIONS:
        shown = comparison(report.rows, report.axes, state.swept_keys)
        tag = view_tag(f"mlflow-energy: {report.title}", view_state(shown)) if shown.run_ids else None
        view = View(view_key(state.sweep_id), tag, shown.run_colours) if tag else None
    path = view_path(state.experiment_id, view.key) if view else None
    report.tags[names.TAG_DESCRIPTION] = sweep_answer(report, path)
    line = experiment_line(report, path, run_path(state.experiment_id, state.parent_run_id)) if path else None
    log_sweep_report(client, state.parent_run_id, report, status, view, line)
    return view_url(state.tracking_uri, state.experiment_id, view.key) if view else None


def rebuild_report(tracking_uri: str, experiment: str, sweep_id: str | None, folder: Path | None) -> list[PointRow]:
    """``mlflow-energy report``: the same report from what is stored (the parent's
    sweep_points.json), logged to the parent again and, with ``folder``, kept there."""
    from mlflow.tracking import MlflowClient

    from mlflow_energy.store.reads import search_experiment_runs

    client = MlflowClient(tracking_uri=tracking_uri)
    _, parents = search_experiment_runs(
        client, experiment, filters.SWEEP_PARENTS, sweep_id, order_by=filters.NEWEST_FIRST
    )
    if not parents:
        which = f"sweep {sweep_id!r}" if sweep_id else "any sweep"
        raise LookupError(f"experiment {experiment!r} holds no parent run of {which}; check --sweep.")
    parent = parents[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(client.download_artifacts(parent.info.run_id, names.ARTIFACT_SWEEP_POINTS, tmp))
        saved = json.loads(path.read_text())
    outcomes = [PointOutcome(**o) for o in saved["points"]]
    state = SweepState(**{**saved["sweep"], "tracking_uri": tracking_uri})
    with tempfile.TemporaryDirectory() as tmp:
        report = build_report(client, state, outcomes, folder or Path(tmp))
        _log_report(client, state, report)
    return report.rows
