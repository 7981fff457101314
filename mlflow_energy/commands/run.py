"""``mlflow-energy run [-m] [overrides]``: Hydra composes the configuration; each job (the one
run, or every job of a sweep) is checked, measured in a child process, logged and summarised."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_energy.bench.interrupt import STOP
from mlflow_energy.commands.checks import validated
from mlflow_energy.commands.exits import (
    EXIT_CONFIG_ERROR,
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    EXIT_TRACKING_ERROR,
    fail,
    interrupted,
)
from mlflow_energy.commands.log import log_and_report, ui_hint
from mlflow_energy.store.uris import redact_uri

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from mlflow_energy.sweep.state import SweepEnd

log = logging.getLogger("mlflow_energy")


def run_command(argv: list[str]) -> None:
    import hydra

    from mlflow_energy.config import config_dir, register_schema
    from mlflow_energy.sweep.callback import SweepCallback
    from mlflow_energy.sweep.sweeper import register_sweeper

    register_schema()
    register_sweeper()  # conf/config.yaml's last default
    STOP.install(EXIT_INTERRUPTED, sigterm_too=True)  # `timeout` and `kill` stop a sweep as Ctrl-C does
    overrides = expand_overrides(argv)
    sys.argv = ["mlflow-energy", *overrides]  # Hydra parses sys.argv itself
    hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(execute)()
    if SweepCallback.last_end is not None:
        end_sweep(SweepCallback.last_end, f"mlflow-energy run {shlex.join(overrides)}")
    if SweepCallback.register_error:
        fail(f"the sweep finished but registration failed: {SweepCallback.register_error}", EXIT_RUN_FAILED)


def expand_overrides(argv: list[str]) -> list[str]:
    """``--overrides "a=1 -m b=2,3"`` (one string, as `mlflow run` passes a parameter) -> words."""
    if argv[:1] == ["--overrides"]:
        return shlex.split(" ".join(argv[1:2])) + argv[2:]
    return argv


def execute(cfg: DictConfig) -> None:
    """Hydra's task: one job, the run's or a sweep's."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mlflow_energy.sweep.state import SweepState

    STOP.install(EXIT_INTERRUPTED)  # again here (SIGINT only): a joblib worker is a process of its own
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        sweep = SweepState.read(sweep_dir)
        if sweep is not None:
            from mlflow_energy.commands.sweep_job import sweep_job

            sweep_job(cfg, out_dir, sweep, sweep_dir, hydra_cfg.job.num, list(hydra_cfg.overrides.task))
            return
    _single_run(cfg, out_dir)


def _single_run(cfg: DictConfig, out_dir: Path) -> None:
    from mlflow_energy.bench import stages
    from mlflow_energy.bench.isolation import planned_processes, prepare, run_isolated
    from mlflow_energy.config import ConfigError
    from mlflow_energy.inference.hardware_support import resolve_device
    from mlflow_energy.store.kept import wait_for_server
    from mlflow_energy.store.reads import TrackingError

    command_stages: dict[str, float] = {}
    clock = stages.StageClock(command_stages, stages.STARTUP, stages.process_age_s())
    # The benchmark processes do their imports while the configuration is checked.
    prepare(planned_processes(cfg.scenario, cfg.bench.processes))
    try:
        config, project = validated(cfg, clock)
    except (ConfigError, TrackingError) as exc:
        fail(str(exc), EXIT_CONFIG_ERROR)
    if STOP.requested:
        interrupted("nothing was measured or logged.")
    experiment = config.tracking.experiment if project is None else project.experiment
    if project is not None and experiment != config.tracking.experiment:
        # `mlflow run` made the run before the tool started; a run cannot change experiment.
        log.info("logging into run %s of experiment %r, which `mlflow run` created (tracking.experiment=%r does "
                 "not apply; `mlflow run --experiment-name` picks the experiment)",
                 project.run_id, experiment, config.tracking.experiment)  # fmt: skip
    log.info("measuring %s on %s; files in %s", config.model.name, resolve_device(config.device), out_dir)
    clock.enter(stages.BETWEEN)  # closes the store's stage: the benchmark's own come with its result
    run_isolated(config, out_dir, command_stages=command_stages)
    wait_for_server(config.tracking.uri, config.tracking.wait_s)
    code, run_id = log_and_report(out_dir, config.tracking.uri, experiment, config.tracking.run_name,
                                  project_run_id=project.run_id if project else None)  # fmt: skip
    if STOP.requested:
        interrupted(f"what was measured is kept in {out_dir}" + (f" and logged as run {run_id}." if run_id else "."))
    if code:
        raise SystemExit(code)


def end_sweep(end: SweepEnd, command: str) -> None:
    """The sweep's last sentence and exit code: interrupted (130), results or the parent not in
    MLflow (3), failed points (1); nothing when all went well."""
    from mlflow_energy.sweep.state import Outcome

    if end.comparison_url:
        print(f"Compare the sweep's points in the MLflow UI: {ui_hint(end.tracking_uri, end.comparison_url)}")
    kept, parent = end.counts[Outcome.NOT_LOGGED], end.parent_run_id
    resume = f"run the same command again: {command}"
    if end.parent_status is None:
        waiting = f" and {kept} result(s) wait on disk" if kept else ""
        message = (f"the tracking server at {redact_uri(end.tracking_uri)} does not answer, so the sweep's parent run "
                   f"{parent} stays open{waiting}; once it answers, {resume}")  # fmt: skip
    elif kept:
        message = (f"{kept} result(s) could not be logged and wait on disk (the sweep's parent run {parent} is "
                   f"{end.parent_status}); once the tracking server answers, {resume}")  # fmt: skip
    elif end.interrupted:
        message = (f"the sweep stopped after {sum(end.counts.values())} job(s) and its parent run {parent} is closed "
                   f"({end.parent_status}) with their report; to resume, {resume}")  # fmt: skip
    elif end.counts[Outcome.FAILED]:
        fail(f"{end.counts[Outcome.FAILED]} job(s) of the sweep failed; their runs hold the errors.", EXIT_RUN_FAILED)
    else:
        return
    if end.interrupted:
        interrupted(message)
    fail(message, EXIT_TRACKING_ERROR)
