"""Console entry point: ``mlflow-energy run [overrides]`` and the subcommands beside it."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from mlflow_energy.config import RunConfig
    from mlflow_energy.tracking.sweep import SweepState

log = logging.getLogger("mlflow_energy")

USAGE = """usage: mlflow-energy <command> [arguments]

commands:
  run [-m] [key=value ...]   measure one configuration (Hydra overrides; -m sweeps a grid)
  run --overrides "STRING"   the same, overrides in one string (how MLproject passes them)
  log OUTPUT_DIR             log a saved result folder (result.json) to MLflow again
  report --experiment NAME [--sweep ID]
                             rebuild a sweep's report (summary.csv/html, pareto.png) from the store
  register --experiment NAME --name MODEL [--sweep ID] [--metric M] [--max M=V] [--min M=V]
           [--allow-overlap]  register the most efficient qualifying run in the Model Registry; the
                             champion alias moves only when the new one is better beyond both 95%
                             intervals (--allow-overlap: on a better value)

`mlflow-energy run --help` lists the configuration groups; `mlflow-energy run --cfg job`
prints the resolved configuration without running anything.
"""

EXIT_CONFIG_ERROR = 2
EXIT_RUN_FAILED = 1
EXIT_TRACKING_ERROR = 3


def _fail(message: str, code: int) -> NoReturn:
    print(f"mlflow-energy: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _ui_hint(uri: str, experiment_id: str, run_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"mlflow ui --backend-store-uri {uri}"


def _log_and_report(
    out_dir: Path, tracking_uri: str, experiment: str, run_name: str | None, extra_tags: dict[str, str] | None = None
) -> tuple[int, str | None]:
    """Logs the result in ``out_dir`` and prints its summary: (exit code, run id)."""
    from mlflow_energy.bench.result import BenchResult
    from mlflow_energy.report.console import print_summary
    from mlflow_energy.tracking.logger import log_result

    result = BenchResult.read(out_dir)
    try:
        logged = log_result(result, out_dir, tracking_uri, experiment, run_name, extra_tags)
    except Exception as exc:  # the measurement is safe on disk; say how to log it later
        print_summary(result, f"{out_dir} (not in MLflow)", None)
        print(
            f"mlflow-energy: error: could not log to MLflow at {tracking_uri} ({type(exc).__name__}: {exc}); the "
            f"result is saved in {out_dir}, log it later with: mlflow-energy log {out_dir}",
            file=sys.stderr,
        )
        return EXIT_TRACKING_ERROR, None
    where = f"{tracking_uri}, experiment {experiment!r}, run {logged.run_id} ({logged.status})"
    print_summary(result, where, _ui_hint(tracking_uri, logged.experiment_id, logged.run_id))
    return (0 if result.status == "finished" else EXIT_RUN_FAILED), logged.run_id


def _validated(cfg: object) -> RunConfig:
    from mlflow_energy.config import to_run_config, validate
    from mlflow_energy.inference.models import resolve_model
    from mlflow_energy.tracking.logger import prepare_experiment

    config = to_run_config(cfg)  # type: ignore[arg-type]
    validate(config)
    resolve_model(config.model)
    prepare_experiment(config.tracking.uri, config.tracking.experiment)
    return config


def execute(cfg: object) -> None:
    """One grid point: validate, measure in a child process, log, summarise."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mlflow_energy.tracking.sweep import SweepState

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        sweep = SweepState.read(sweep_dir)
        if sweep is not None:
            _sweep_point(cfg, out_dir, sweep, sweep_dir, hydra_cfg.job.num, list(hydra_cfg.overrides.task))
            return
    _single_run(cfg, out_dir)


def _single_run(cfg: object, out_dir: Path) -> None:
    from mlflow_energy.bench.isolation import run_isolated
    from mlflow_energy.config import ConfigError, resolve_device
    from mlflow_energy.tracking.logger import TrackingError

    try:
        config = _validated(cfg)
    except (ConfigError, TrackingError) as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)
    log.info("measuring %s on %s; files in %s", config.model.name, resolve_device(config.device), out_dir)
    run_isolated(config, out_dir)
    code, _ = _log_and_report(out_dir, config.tracking.uri, config.tracking.experiment, config.tracking.run_name)
    if code:
        raise SystemExit(code)


def _sweep_point(cfg: object, out_dir: Path, sweep: SweepState, sweep_dir: Path, num: int, overrides: list[str]) -> None:
    """A job (one replicate of a grid point) never stops the sweep: whatever happens becomes its
    outcome (and a run)."""
    from mlflow_energy.bench.gpu_lease import isolated_device
    from mlflow_energy.bench.isolation import run_isolated
    from mlflow_energy.config import ConfigError, config_hash, point_hash, to_run_config
    from mlflow_energy.tracking import names
    from mlflow_energy.tracking.logger import TrackingError, find_finished_run, log_refused
    from mlflow_energy.tracking.sweep import PointOutcome, point_name, read_outcomes, replicate_run_name

    started = time.time()
    typed = to_run_config(cfg)  # before validation: a refused job still knows its point and replicate
    point, replicate = point_hash(typed), typed.sweep.replicate
    name = point_name(overrides, sweep.swept_keys)
    run_name = replicate_run_name(name, replicate, sweep.replicates)
    label = f"point {num + 1} of {sweep.points or '?'} ({run_name})"
    tags = {names.TAG_SWEEP_ID: sweep.sweep_id, names.TAG_MLFLOW_PARENT: sweep.parent_run_id}
    try:
        config = _validated(cfg)
    except (ConfigError, TrackingError) as exc:
        refused_tags = {**tags, names.TAG_POINT_HASH: point, names.TAG_REPLICATE: str(replicate)}
        run_id = log_refused(sweep.tracking_uri, sweep.experiment_id, run_name, overrides, str(exc), refused_tags)
        PointOutcome(num, name, "failed", run_id, None, str(exc), point_hash=point, replicate=replicate).write(out_dir)
        sweep.progress(sweep_dir, f"{label}: refused: {exc}")
        return
    digest = config_hash(config)
    if config.bench.resume:
        existing = find_finished_run(sweep.tracking_uri, sweep.experiment_id, digest)
        if existing is not None:
            PointOutcome(num, name, "skipped", existing.info.run_id, digest, point_hash=point,
                         replicate=replicate).write(out_dir)  # fmt: skip
            sweep.progress(sweep_dir, f"{label}: skipped, already measured in run {existing.info.run_id} "
                                      "(bench.resume=false measures it again)")  # fmt: skip
            return
    sweep.progress(sweep_dir, f"{label}: starting; {_eta(sweep, read_outcomes(sweep_dir))}")
    with isolated_device(config.device, sweep.parallel_jobs, sweep_dir / "gpu_leases"):
        run_isolated(config, out_dir)
    code, run_id = _log_and_report(out_dir, config.tracking.uri, config.tracking.experiment, run_name, tags)
    status = "finished" if code == 0 else "failed"
    error = None if code == 0 else f"exit code {code}; see {out_dir}"
    PointOutcome(num, name, status, run_id, digest, error, time.time() - started, point_hash=point,
                 replicate=replicate).write(out_dir)  # fmt: skip
    sweep.progress(sweep_dir, f"{label}: {status} in {time.time() - started:.0f} s")


def _eta(sweep: SweepState, done: list) -> str:
    elapsed = time.time() - sweep.started_s
    measured = [o.seconds for o in done if o.status != "skipped" and o.seconds]
    if sweep.points is None or not measured:
        return f"{elapsed:.0f} s elapsed"
    remaining = max(0, sweep.points - len(done))
    eta = sum(measured) / len(measured) * remaining / max(1, sweep.parallel_jobs)
    return f"{elapsed:.0f} s elapsed, about {eta:.0f} s left"


def _expand_overrides(argv: list[str]) -> list[str]:
    """``--overrides "a=1 -m b=2,3"`` (one string, as `mlflow run` passes a parameter) -> words."""
    import shlex

    if argv[:1] == ["--overrides"]:
        return shlex.split(" ".join(argv[1:2])) + argv[2:]
    return argv


def _run(argv: list[str]) -> None:
    import hydra

    from mlflow_energy.config import config_dir, register_schema

    from mlflow_energy.tracking.sweep import SweepCallback
    from mlflow_energy.tracking.sweeper import register_sweeper

    register_schema()
    register_sweeper()  # conf/config.yaml's last default
    sys.argv = ["mlflow-energy", *_expand_overrides(argv)]  # Hydra parses sys.argv itself
    hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(execute)()
    if SweepCallback.last_failed:
        _fail(f"{SweepCallback.last_failed} job(s) of the sweep failed; their runs hold the errors.", EXIT_RUN_FAILED)
    if SweepCallback.register_error:
        _fail(f"the sweep finished but registration failed: {SweepCallback.register_error}", EXIT_RUN_FAILED)


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
    code, _ = _log_and_report(
        args.output_dir,
        args.tracking_uri or tracking["uri"],
        args.experiment or tracking["experiment"],
        tracking.get("run_name"),
    )
    raise SystemExit(code)


def _report(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mlflow-energy report", description="Rebuild a sweep's report from the MLflow store, without re-running."
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--sweep", help="sweep id (tag mlflow_energy.sweep_id); default: the latest sweep")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--out", type=Path, help="also keep the report files in this folder")
    args = parser.parse_args(argv)
    from mlflow_energy.report.sweep_report import rebuild_report

    try:
        rebuild_report(args.tracking_uri, args.experiment, args.sweep, args.out)
    except LookupError as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)


def _register(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mlflow-energy register",
        description="Register the most efficient run that meets every constraint in the MLflow Model Registry.",
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--sweep", help="only runs of this sweep (tag mlflow_energy.sweep_id)")
    parser.add_argument("--name", required=True, help="registered model name")
    parser.add_argument("--metric", default="energy/j_per_token", help="metric to optimise (default energy/j_per_token)")
    parser.add_argument("--direction", choices=["auto", "min", "max"], default="auto",
                        help="auto: max for throughput/ and efficiency/ metrics, else min")  # fmt: skip
    parser.add_argument("--max", action="append", default=[], metavar="METRIC=VALUE", help="upper bound (repeatable)")
    parser.add_argument("--min", action="append", default=[], metavar="METRIC=VALUE", help="lower bound (repeatable)")
    parser.add_argument("--alias", default="efficient", help="alias to point at the champion (default efficient)")
    parser.add_argument("--reference", action="store_true", help="hub models: record hub id and revision, copy no weights")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="move the alias to a better value even when the two 95%% intervals overlap "
                             "(default: only when the challenger is better beyond both)")  # fmt: skip
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args(argv)
    from mlflow_energy.tracking.registry import RegistryError, select_and_register

    try:
        select_and_register(args.tracking_uri, args.experiment, args.sweep, args.name, args.metric, args.direction,
                            args.max, args.min, args.alias, args.reference, args.allow_overlap)  # fmt: skip
    except RegistryError as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)


COMMANDS = {"run": _run, "log": _relog, "report": _report, "register": _register}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else EXIT_CONFIG_ERROR)
    command = COMMANDS.get(argv[0])
    if command is None:
        _fail(f"unknown command {argv[0]!r}; use one of: {', '.join(COMMANDS)}.", EXIT_CONFIG_ERROR)
    command(argv[1:])
