"""``hydra/launcher=ray``: the Ray plugin's launcher, one task per job with the job's own
resources and name (``jobs.py`` says what changes and why)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, setup_globals
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
from mlflow_energy.sweep.jobs import first_line, gathered, planned_jobs, wait_or_stop

RAY_LOCAL_OBJECT_STORE_BYTES = 78_643_200  # as the plugin sets it: a local Ray that fits a small machine


def _ray_job(hydra_context: Any, sweep_config: DictConfig, task_function: Any, singleton_state: Any,
             launch_dir: str) -> JobReturn:  # fmt: skip
    """One job in a Ray worker, in the launching folder (relative paths in the config mean the
    same there, on a cluster whose nodes share it)."""
    from hydra_plugins.hydra_ray_launcher._launcher_util import _run_job

    if os.path.isdir(launch_dir):
        os.chdir(launch_dir)
    return _run_job(hydra_context, sweep_config, task_function, singleton_state)


class RayJobs(RayLauncher):
    """``hydra/launcher=ray``: one Ray task per job, never retried (a measurement repeated behind
    the sweep's back would be a second result), asking for the job's GPUs and CPUs."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        from hydra_plugins.hydra_ray_launcher._launcher_util import start_ray

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        if self.ray_cfg.init.get("address") is None:
            self.ray_cfg.init.setdefault("object_store_memory", RAY_LOCAL_OBJECT_STORE_BYTES)
        start_ray(self.ray_cfg.init)
        remote: dict[str, Any] = OmegaConf.to_container(self.ray_cfg.remote, resolve=True) or {}  # type: ignore[assignment]
        task = ray.remote(_ray_job)
        pending = []
        for job in planned_jobs(self, job_overrides, initial_job_idx, ray.cluster_resources().get("GPU", 0) > 0):
            cpus = {"num_cpus": job.request.cpus} if job.request.cpus else {}
            options = {"max_retries": 0, "name": job.request.name, "num_gpus": job.request.gpus, **cpus, **remote}
            ref = task.options(**options).remote(self.hydra_context, job.config, self.task_function,
                                                 Singleton.get_state(), os.getcwd())  # fmt: skip
            pending.append((job, ref))
        refs = [ref for _, ref in pending]

        def running() -> list[Any]:
            return ray.wait(refs, num_returns=len(refs), timeout=0)[1]

        wait_or_stop(lambda: not running(), lambda: [ray.cancel(ref) for ref in running()])

        def cause(exc: BaseException) -> str:
            return f"Ray lost the job ({type(exc).__name__}: {first_line(exc)})"

        return [gathered(job, partial(ray.get, ref), (ray.exceptions.RayError,), cause) for job, ref in pending]


