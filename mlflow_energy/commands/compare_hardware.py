"""``mlflow-energy compare-hardware``: the same configurations measured on different machines,
side by side, from the tracking store (report/compare_hardware.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlflow_energy.commands.exits import EXIT_CONFIG_ERROR, EXIT_TRACKING_ERROR, fail, writable_or_fail


def compare_hardware_command(argv: list[str]) -> None:
    """Exit 0 with the files written, also when no configuration has a counterpart (the files and
    the console say so and list what each class measured); 2 for an unknown experiment, one
    without FINISHED measurement runs, a --baseline that names no class or several, a local store
    that does not exist, or an --out that cannot be written; 3 for a tracking server that does
    not answer."""
    parser = argparse.ArgumentParser(
        prog="mlflow-energy compare-hardware",
        description="Compare the same configurations measured on different hardware (J/token, tokens/s, ratios).",
    )
    parser.add_argument("--experiment", required=True, action="append",
                        help="MLflow experiment name; repeat to read several")  # fmt: skip
    parser.add_argument("--tracking-uri", action="append", help="a tracking store to read; repeat to read several "
                        "(each machine's own SQLite file); default: sqlite:///mlflow.db")  # fmt: skip
    parser.add_argument("--baseline", help="the hardware class ratios are taken against: its name or a part of it "
                        "(case-insensitive); default: the class that measured the most configurations")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("hardware-report"),
                        help="folder for hardware.csv, hardware.md, hardware.png; default: %(default)s")  # fmt: skip
    args = parser.parse_args(argv)
    from mlflow_energy.report.compare_hardware import load, write
    from mlflow_energy.store.reads import TrackingError, check_reachable

    uris = args.tracking_uri or ["sqlite:///mlflow.db"]
    for uri in uris:
        try:
            check_reachable(uri)  # a dead server fails in seconds, not after MLflow's minutes of retries
        except TrackingError as exc:
            fail(str(exc), EXIT_TRACKING_ERROR)
        database = uri.removeprefix("sqlite:///")
        if uri.startswith("sqlite:///") and not Path(database).is_file():  # MLflow would create it
            fail(f"there is no tracking store at {database}; check --tracking-uri.", EXIT_CONFIG_ERROR)
    try:
        report = load(uris, args.experiment, args.baseline)
    except LookupError as exc:
        fail(str(exc), EXIT_CONFIG_ERROR)
    writable_or_fail(args.out, "--out")
    write(report, args.out, uris)
