"""``mlflow-energy register``: the most efficient qualifying configuration into the Model Registry."""

from __future__ import annotations

import argparse

from mlflow_energy.commands.exits import EXIT_CONFIG_ERROR, fail
from mlflow_energy.store import names


def register_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mlflow-energy register",
        description="Register the most efficient run that meets every constraint in the MLflow Model Registry.",
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--sweep", help="only runs of this sweep (tag mlflow_energy.sweep_id)")
    parser.add_argument("--name", required=True, help="registered model name")
    parser.add_argument("--metric", default=names.ENERGY_PER_TOKEN,
                        help=f"metric to optimise (default {names.ENERGY_PER_TOKEN})")  # fmt: skip
    parser.add_argument("--direction", choices=["auto", "min", "max"], default="auto",
                        help="auto: max for throughput/ and efficiency/ metrics, else min")  # fmt: skip
    parser.add_argument("--max", action="append", default=[], metavar="METRIC=VALUE", help="upper bound (repeatable)")
    parser.add_argument("--min", action="append", default=[], metavar="METRIC=VALUE", help="lower bound (repeatable)")
    parser.add_argument("--alias", default="efficient", help="alias to point at the champion (default efficient)")
    parser.add_argument("--reference", action="store_true",
                        help="hub models: record hub id and revision, copy no weights")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="move the alias to a better value even when the two 95%% intervals overlap "
                             "(default: only when the challenger is better beyond both)")  # fmt: skip
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args(argv)
    from mlflow_energy.registry.register import RegistryError, select_and_register

    try:
        select_and_register(args.tracking_uri, args.experiment, args.sweep, args.name, args.metric, args.direction,
                            args.max, args.min, args.alias, args.reference, args.allow_overlap)  # fmt: skip
    except RegistryError as exc:
        fail(str(exc), EXIT_CONFIG_ERROR)
