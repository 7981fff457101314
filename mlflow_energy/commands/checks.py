"""What is checked before anything runs: the configuration, its model and input files, the
tracking store and the output folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hydra.experimental.callback import Callback

from mlflow_energy.commands.exits import writable_or_fail

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from mlflow_energy.bench.stages import StageClock
    from mlflow_energy.config import RunConfig
    from mlflow_energy.store.reads import ProjectRun


def check_run(config: RunConfig) -> None:
    """The configuration, its input files and its model, checked (ConfigError)."""
    from mlflow_energy.config import validate
    from mlflow_energy.inference.hardware_support import check_hardware_support
    from mlflow_energy.inference.inputs import validate_inputs
    from mlflow_energy.inference.models import resolve_model, validate_pruning_fits, validate_workload_fits
    from mlflow_energy.inference.server import check_serving

    validate(config)
    check_hardware_support(config)
    validate_inputs(config)
    source = resolve_model(config.model)
    validate_workload_fits(source, config)
    validate_pruning_fits(source, config.model)
    if config.scenario == "serving":
        check_serving(config)


def checked(cfg: DictConfig) -> RunConfig:
    """The typed configuration of a Hydra job, checked (ConfigError)."""
    from mlflow_energy.config import to_run_config

    config = to_run_config(cfg)
    check_run(config)
    return config


def validated(cfg: DictConfig, clock: StageClock | None = None) -> tuple[RunConfig, ProjectRun | None]:
    """Checked, with its tracking store ready (TrackingError), and the run `mlflow run` created
    for it, if any; ``clock`` times the checks and the store apart."""
    from mlflow_energy.bench import stages
    from mlflow_energy.record.writer import prepare_experiment
    from mlflow_energy.store.reads import project_run

    if clock is not None:
        clock.enter(stages.CHECKS)
    config = checked(cfg)
    if clock is not None:
        clock.enter(stages.STORE)
    project = project_run(config.tracking.uri)
    if project is None:  # under `mlflow run` the result goes to its run: tracking.experiment would stay empty
        prepare_experiment(config.tracking.uri, config.tracking.experiment)
    return config, project


class OutputFolderCheck(Callback):
    """Refuses an output folder that cannot be written before Hydra writes into it and before any
    run exists (conf/config.yaml lists this callback before the sweep's, which creates a run)."""

    def on_run_start(self, config: DictConfig, **kwargs: object) -> None:
        writable_or_fail(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        writable_or_fail(Path(config.hydra.sweep.dir), "hydra.sweep.dir")
