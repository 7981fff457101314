"""Console entry point: ``mlflow-energy run [overrides]`` and the subcommands beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

USAGE = """usage: mlflow-energy <command> [arguments]

commands:
  run [-m] [key=value ...]   measure one configuration (Hydra overrides; -m sweeps a grid)
  run --overrides "STRING"   the same, overrides in one string (how MLproject passes them)
  log OUTPUT_DIR             log a saved result folder (result.json) to MLflow again

`mlflow-energy run --help` lists the configuration groups; `mlflow-energy run --cfg job`
prints the resolved configuration without running anything.
"""

EXIT_CONFIG_ERROR = 2
EXIT_RUN_FAILED = 1
EXIT_TRACKING_ERROR = 3


def _fail(message: str, code: int) -> None:
    print(f"mlflow-energy: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _ui_hint(uri: str, experiment_id: str, run_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"mlflow ui --backend-store-uri {uri}"


def _log_and_report(out_dir: Path, tracking_uri: str, experiment: str, run_name: str | None) -> int:
    from mlflow_energy.bench.result import BenchResult
    from mlflow_energy.report.console import print_summary
    from mlflow_energy.tracking.logger import log_result

    result = BenchResult.read(out_dir)
    try:
        logged = log_result(result, out_dir, tracking_uri, experiment, run_name)
    except Exception as exc:  # the measurement is safe on disk; say how to log it later
        print_summary(result, f"{out_dir} (not in MLflow)", None)
        _fail(
            f"could not log to MLflow at {tracking_uri} ({type(exc).__name__}: {exc}); the result is saved in "
            f"{out_dir}, log it later with: mlflow-energy log {out_dir}",
            EXIT_TRACKING_ERROR,
        )
    where = f"{tracking_uri}, experiment {experiment!r}, run {logged.run_id} ({logged.status})"
    print_summary(result, where, _ui_hint(tracking_uri, logged.experiment_id, logged.run_id))
    return 0 if result.status == "finished" else EXIT_RUN_FAILED


def execute(cfg: object) -> None:
    """One grid point: validate, measure in a child process, log, summarise."""
    from hydra.core.hydra_config import HydraConfig

    from mlflow_energy.bench.isolation import run_isolated
    from mlflow_energy.config import ConfigError, resolve_device, to_run_config, validate
    from mlflow_energy.inference.models import resolve_model
    from mlflow_energy.tracking.logger import TrackingError, prepare_experiment

    try:
        config = to_run_config(cfg)  # type: ignore[arg-type]
        validate(config)
        resolve_model(config.model)
        prepare_experiment(config.tracking.uri, config.tracking.experiment)
    except (ConfigError, TrackingError) as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    device = resolve_device(config.device)
    print(f"mlflow-energy: measuring {config.model.name} on {device}; files in {out_dir}", file=sys.stderr)
    run_isolated(config, out_dir)
    code = _log_and_report(out_dir, config.tracking.uri, config.tracking.experiment, config.tracking.run_name)
    if code:
        raise SystemExit(code)


def _expand_overrides(argv: list[str]) -> list[str]:
    """``--overrides "a=1 -m b=2,3"`` (one string, as `mlflow run` passes a parameter) -> words."""
    import shlex

    if argv[:1] == ["--overrides"]:
        return shlex.split(" ".join(argv[1:2])) + argv[2:]
    return argv


def _run(argv: list[str]) -> None:
    import hydra

    from mlflow_energy.config import config_dir, register_schema

    register_schema()
    sys.argv = ["mlflow-energy", *_expand_overrides(argv)]  # Hydra parses sys.argv itself
    hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(execute)()


def _relog(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="mlflow-energy log", description="Log a saved result folder to MLflow.")
    parser.add_argument("output_dir", type=Path, help="a run's output folder holding result.json")
    parser.add_argument("--tracking-uri", help="default: the tracking.uri the run was configured with")
    parser.add_argument("--experiment", help="default: the tracking.experiment the run was configured with")
    args = parser.parse_args(argv)
    from mlflow_energy.bench.result import RESULT_FILE, BenchResult

    if not (args.output_dir / RESULT_FILE).is_file():
        _fail(f"{args.output_dir} holds no {RESULT_FILE}; pass the output folder a run printed.", EXIT_CONFIG_ERROR)
    tracking = BenchResult.read(args.output_dir).config["tracking"]
    code = _log_and_report(
        args.output_dir,
        args.tracking_uri or tracking["uri"],
        args.experiment or tracking["experiment"],
        tracking.get("run_name"),
    )
    raise SystemExit(code)


COMMANDS = {"run": _run, "log": _relog}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else EXIT_CONFIG_ERROR)
    command = COMMANDS.get(argv[0])
    if command is None:
        _fail(f"unknown command {argv[0]!r}; use one of: {', '.join(COMMANDS)}.", EXIT_CONFIG_ERROR)
    command(argv[1:])
