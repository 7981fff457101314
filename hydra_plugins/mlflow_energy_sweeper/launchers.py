"""This tool's launchers for Hydra's Ray and submitit plugins, where Hydra looks for them: it
instantiates launchers only from the ``hydra_plugins`` package. They are built in
``mlflow_energy/sweep/`` (``jobs.py`` says what they change). Hydra's plugin scan imports this
module whether or not those plugins are installed (extras ``ray`` and ``slurm``), so each
launcher is defined only where its plugin is."""

from __future__ import annotations

from importlib.util import find_spec

if find_spec("hydra_plugins.hydra_ray_launcher") is not None:
    from mlflow_energy.sweep import ray_jobs

    class RayJobs(ray_jobs.RayJobs):
        """``hydra/launcher=ray``, as ``mlflow_energy.sweep.ray_jobs.RayJobs`` runs it."""


if find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
    from mlflow_energy.sweep import submitit_jobs

    class SlurmJobs(submitit_jobs.SlurmJobs):
        """``hydra/launcher=submitit_slurm``, as ``mlflow_energy.sweep.submitit_jobs.SlurmJobs`` runs it."""

    class SubmititLocalJobs(submitit_jobs.SubmititLocalJobs):
        """``hydra/launcher=submitit_local``, as ``mlflow_energy.sweep.submitit_jobs`` runs it."""
