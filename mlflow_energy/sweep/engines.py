"""Which engine runs a sweep's jobs, whether they may run on other machines, and what each job
asks the engine for (GPUs, CPUs, a name).

Where an engine assigns devices (Ray, SLURM), the job measures what it was given: the engine
sets ``CUDA_VISIBLE_DEVICES`` and the meter measures exactly those GPUs. The lock-file lease of
``bench/gpu_lease.py`` applies only to joblib on one host, where nothing else assigns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

RAY_TARGET = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
SLURM_TARGET = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
SUBMITIT_LOCAL_TARGET = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
# The plugins' launchers, as this tool runs them: each job with its own resources and name, and
# a job the engine loses recorded as a FAILED point instead of ending the sweep.
OWN_LAUNCHERS = {
    RAY_TARGET: "hydra_plugins.mlflow_energy_sweeper.launchers.RayJobs",
    SLURM_TARGET: "hydra_plugins.mlflow_energy_sweeper.launchers.SlurmJobs",
    SUBMITIT_LOCAL_TARGET: "hydra_plugins.mlflow_energy_sweeper.launchers.SubmititLocalJobs",
}


class Engine(str, Enum):
    """What launches a sweep's jobs (``hydra/launcher``)."""

    BASIC = "basic"  # one job after another, in the launching process
    JOBLIB = "joblib"
    RAY = "ray"
    SLURM = "submitit_slurm"
    SUBMITIT_LOCAL = "submitit_local"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


def engine_of(launcher: Any) -> Engine:
    """The engine of a ``hydra.launcher`` node (either the plugin's target or this tool's own)."""
    target = str(launcher.get("_target_", ""))
    for engine, plugin in ((Engine.RAY, RAY_TARGET), (Engine.SLURM, SLURM_TARGET),
                           (Engine.SUBMITIT_LOCAL, SUBMITIT_LOCAL_TARGET)):  # fmt: skip
        if target in (plugin, OWN_LAUNCHERS[plugin]):
            return engine
    if target.endswith("BasicLauncher"):
        return Engine.BASIC
    if "joblib" in target.lower():
        return Engine.JOBLIB
    return Engine.OTHER


def may_leave_this_host(engine: Engine, launcher: Any) -> bool:
    """Whether jobs may run on another machine: SLURM always; Ray when it joins a running
    cluster (``ray.init.address``) rather than starting one on this host."""
    if engine == Engine.SLURM:
        return True
    return engine == Engine.RAY and launcher.ray.init.get("address") not in (None, "local")


@dataclass(frozen=True)
class JobRequest:
    """What one job asks the engine for."""

    name: str  # the job's name in the engine (squeue, the Ray dashboard): its run's name
    gpus: int
    cpus: int | None  # None: the engine's default


def job_request(run_name: str, device: str, gpus_per_job: int | None, cpus_per_job: int | None,
                cluster_has_gpus: bool) -> JobRequest:  # fmt: skip
    """A CPU point asks for no GPU; a GPU point (``cuda``, or ``auto`` where the cluster has GPUs)
    for ``sweep.gpus_per_job`` of them, one by default (a sharded model sets how many)."""
    wants_gpu = device.startswith("cuda") or (device == "auto" and cluster_has_gpus)
    gpus = (1 if gpus_per_job is None else gpus_per_job) if wants_gpu else 0
    return JobRequest(job_name(run_name), gpus, cpus_per_job)


def job_name(run_name: str) -> str:
    """A run name as a scheduler accepts it (SLURM reads ``#`` and spaces in a job script)."""
    return re.sub(r"[^A-Za-z0-9._=,:+-]+", "_", run_name)[:200]
