"""A Hydra multirun as one MLflow parent run: created before the first job, closed with a report.

``SweepCallback`` runs in the launching process (Hydra calls it around the sweep). It creates
the store, the experiment and the parent run up front, so parallel jobs never race to create
them, and writes the sweep's state to ``<sweep dir>/mlflow_energy_sweep.json``, which every job
reads (in-process, joblib or SLURM workers alike). Each job records its outcome in its own
output folder; the callback gathers them at the end. The jobs are planned in ``sweeper.py``
(the grid, each point ``sweep.replicates`` times) and launched by the ``replicated`` sweeper.

A sweep always ends with its parent closed, or with one sentence saying why it could not be
(the tracking server does not answer) and how to resume: launching the same sweep again logs
the results kept on disk (``kept.py``) and measures only what was not measured.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from mlflow_energy.adapters.hydra import override_key
from mlflow_energy.config import PLAN_PREFIX, ConfigError
from mlflow_energy.record.run_names import override_params
from mlflow_energy.store import names
from mlflow_energy.sweep.state import SweepEnd, SweepState, read_outcomes
from mlflow_energy.sweep.sweeper import ReplicatedSweeperConf, sweep_jobs, sweeper_arguments

log = logging.getLogger("mlflow_energy.sweep")

def grid_points(config: DictConfig) -> list[list[str]] | None:
    """The jobs ``ReplicatedSweeper`` will launch (every replicate of every grid point); None
    under another sweeper. ConfigError for a plan it would refuse."""
    if config.hydra.sweeper.get("_target_") != ReplicatedSweeperConf._target_:
        return None
    return sweep_jobs(config)


def swept_keys(points: list[list[str]] | None) -> list[str]:
    """Keys whose value differs between grid points: the ones that name a child run (the
    ``sweep.*`` keys plan the sweep and name nothing)."""
    if not points:
        return []
    values: dict[str, set[str]] = {}
    for point in points:
        for override in point:
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    return [k for k, v in values.items() if len(v) > 1 and not override_key(k).startswith(PLAN_PREFIX)]


def grid_params(config: DictConfig, points: list[list[str]]) -> list[Any]:
    """The params the grid's runs will log, named as they name them (``model=tiny`` sets
    ``model.name``, ``model.weights``...): each key's one value, or its values across the grid
    joined by commas. A point whose config is refused is left out (its own run says why)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from mlflow.entities import Param
    from omegaconf.errors import OmegaConfBaseException

    from mlflow_energy.config import REPLICATE_KEY, as_dict, flatten, not_applicable, to_run_config

    loader = GlobalHydra.instance().config_loader()
    values: dict[str, dict[str, None]] = {}
    plans = dict.fromkeys(tuple(o for o in point if override_key(o) != REPLICATE_KEY) for point in points)
    for plan in plans:  # in the grid's order, so values read as the command line gave them
        try:
            composed = loader.load_sweep_config(config, list(plan))
            with open_dict(composed):
                del composed["hydra"]  # a job's config, as the job sees it
            run = to_run_config(composed)
        except (ConfigError, ValueError, KeyError, HydraException, OmegaConfBaseException):
            continue
        leave_out = ("tracking.", *not_applicable(run))
        for key, value in flatten(as_dict(run)).items():
            if not key.startswith(leave_out) and key != REPLICATE_KEY:  # which replicate: each job's own
                values.setdefault(key, {})[str(value)] = None
    return [Param(key, ",".join(v)[:6000]) for key, v in values.items()]


def _parallel_jobs(config: DictConfig) -> int:
    n_jobs = config.hydra.launcher.get("n_jobs")
    if n_jobs is None:
        return 1
    if n_jobs < 0:  # joblib: -1 = all cores
        import os

        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return int(n_jobs)


class SweepCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks; active for multiruns only."""

    last_end: SweepEnd | None = None  # read by the CLI after the sweep: its last sentence and exit code
    register_error: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow_energy.record.writer import open_sweep_parent, prepare_experiment
        from mlflow_energy.store.kept import KeptResults
        from mlflow_energy.store.reads import TrackingError
        from mlflow_energy.sweep.shared_state import check_shared_state

        uri, experiment = config.tracking.uri, config.tracking.experiment
        try:
            check_shared_state(config, Path.cwd())
            points = grid_points(config)
            experiment_id = prepare_experiment(uri, experiment)
            keys = swept_keys(points)
            replicates = config.sweep.replicates if points is not None else 1  # only our sweeper replicates
            # The same jobs in the same experiment are the same sweep (resumed); unknown jobs are new.
            grid = sorted(sorted(point) for point in points) if points else [str(time.time())]
            sweep_id = hashlib.sha256(json.dumps([experiment, grid]).encode()).hexdigest()[:10]
            run_name = f"sweep {' x '.join(keys) or 'single point'} ({_size(points, replicates)})"
            if points:
                params = grid_params(config, points)
            else:  # another sweeper decides the points as it goes: the overrides that launched it
                # A key set both ways takes the sweeper's value, as Hydra does.
                params = override_params([*config.hydra.overrides.task,
                                          *sweeper_arguments(config.hydra.sweeper.get("params"))])  # fmt: skip
            parent_id, resumed = open_sweep_parent(uri, experiment_id, sweep_id, run_name, params)
        except (TrackingError, ConfigError) as exc:  # before any job: one sentence, nothing launched
            print(f"mlflow-energy: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        kept_dir = KeptResults.of_sweep(Path.cwd(), sweep_id).folder
        state = SweepState(sweep_id, parent_id, experiment_id, uri, len(points) if points else None, keys,
                           _parallel_jobs(config), replicates=replicates, kept_dir=str(kept_dir),
                           one_process=config.hydra.launcher._target_.endswith(".BasicLauncher"))  # fmt: skip
        state.write(Path(config.hydra.sweep.dir))
        log.info(
            "sweep %s: %s into experiment %r, parent run %s%s",
            sweep_id, _size(points, replicates), experiment, parent_id, " (resumed)" if resumed else "",
        )  # fmt: skip

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow_energy.bench.interrupt import STOP
        from mlflow_energy.sweep.parent_run import finish_sweep

        sweep_dir = Path(config.hydra.sweep.dir)
        state = SweepState.read(sweep_dir)
        if state is None:
            return
        end = finish_sweep(state, read_outcomes(sweep_dir), sweep_dir, config.tracking.wait_s, STOP.requested)
        SweepCallback.last_end = end
        if config.register.enabled and end.parent_status == names.RUN_FINISHED:
            self._register(config, state)

    @staticmethod
    def _register(config: DictConfig, state: SweepState) -> None:
        """``register.enabled=true``: the sweep's most efficient qualifying model, as the
        ``register`` command would choose it."""
        from mlflow_energy.registry.register import RegistryError, select_and_register

        r = config.register
        try:
            select_and_register(state.tracking_uri, config.tracking.experiment, state.sweep_id, r.name, r.metric,
                                r.direction, list(r.max), list(r.min), r.alias, r.reference,
                                r.allow_overlap)  # fmt: skip
        except RegistryError as exc:
            SweepCallback.register_error = str(exc)


def _size(points: list[list[str]] | None, replicates: int) -> str:
    """``4 points`` or ``2 points x 2 replicates``."""
    if not points:
        return "? points"
    return f"{len(points) // replicates} points" + (f" x {replicates} replicates" if replicates > 1 else "")


