"""``mlflow-energy report``: a sweep's report rebuilt from the tracking store, nothing re-run."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlflow_energy.commands.exits import EXIT_CONFIG_ERROR, EXIT_TRACKING_ERROR, fail, writable_or_fail


def report_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mlflow-energy report", description="Rebuild a sweep's report from the MLflow store, without re-running."
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--sweep", help="sweep id (tag mlflow_energy.sweep_id); default: the latest sweep")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--out", type=Path, help="also keep the report files in this folder")
    args = parser.parse_args(argv)
    from mlflow_energy.store.reads import TrackingError, check_reachable
    from mlflow_energy.sweep.parent_run import rebuild_report

    try:
        check_reachable(args.tracking_uri)  # a dead server fails in seconds, not after MLflow's minutes of retries
    except TrackingError as exc:
        fail(str(exc), EXIT_TRACKING_ERROR)
    if args.out is not None:
        writable_or_fail(args.out, "--out")
    try:
        rebuild_report(args.tracking_uri, args.experiment, args.sweep, args.out)
    except LookupError as exc:
        fail(str(exc), EXIT_CONFIG_ERROR)
