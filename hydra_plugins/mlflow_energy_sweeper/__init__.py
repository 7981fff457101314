"""The replicating sweeper as a Hydra plugin (Hydra instantiates plugins only from the
``hydra_plugins`` namespace package). What it launches is decided in
``mlflow_energy.sweep.sweeper``; its config node is registered by
``mlflow_energy.sweep.sweeper.register_sweeper``, which the CLI calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from mlflow_energy.sweep.engines import OWN_LAUNCHERS
from mlflow_energy.sweep.jobs import JobLost
from mlflow_energy.sweep.sweeper import plan_jobs, sweeper_arguments


class ReplicatedSweeper(Sweeper):
    """Launches the jobs ``plan_jobs`` lists, in batches of ``max_batch_size`` as the basic sweeper does."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        self.max_batch_size = max_batch_size
        self.params = params
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        with open_dict(config):
            # Jobs on other machines, or in a Ray worker's own folder, find the sweep by its full path.
            config.hydra.sweep.dir = str(Path(config.hydra.sweep.dir).absolute())
            launcher = config.hydra.launcher
            if launcher.get("_target_") in OWN_LAUNCHERS:
                launcher._target_ = OWN_LAUNCHERS[launcher._target_]
                # Known to Hydra by name: its plugin scan misses modules behind an editable install's hook.
                Plugins.instance().register(get_class(launcher._target_))
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        assert self.config is not None and self.hydra_context is not None
        jobs = plan_jobs(sweeper_arguments(self.params) + list(arguments), self.config.sweep.replicates,
                         self.config.sweep.shuffle_seed, self.hydra_context.config_loader)  # fmt: skip
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's sweepers leave it
        size = self.max_batch_size if self.max_batch_size and self.max_batch_size > 0 else len(jobs)
        returns = []
        for start in range(0, len(jobs), size):
            batch = jobs[start : start + size]
            self.validate_batch_is_legal(batch)  # a composition error stops the sweep before launching
            results = self.launcher.launch(batch, initial_job_idx=start)
            for result in results:
                if isinstance(result._return_value, JobLost):  # the engine lost it: a FAILED point
                    from mlflow_energy.commands.sweep_job import record_lost_job

                    lost = result._return_value
                    record_lost_job(lost.job.config, lost.job.out_dir, lost.job.num, lost.job.overrides, lost.cause)
                    continue
                _ = result.return_value  # re-raises a job's exception, as the basic sweeper does
            returns.append(results)
        return returns
