"""What this tool's launchers share: each job planned with what it asks the engine for, and a
job the engine loses gathered as a ``JobLost`` return instead of an exception that ends the sweep.

The launchers (``ray_jobs.py``, ``submitit_jobs.py``) subclass the Hydra plugins' own: the
engines schedule, place and run the jobs; the subclasses change only how jobs are handed over
and gathered:
- each job asks for what its point needs (``engines.job_request``: GPUs, CPUs) under its run's
  name, where the plugins give every job the same resources and name;
- a job the engine loses (killed, cancelled, preempted, its node gone) comes back as a FAILED
  return holding ``JobLost``, which the sweeper records as a FAILED point; the plugins raise at
  the first lost job, and the sweep would end without its report while other jobs still run.
``ReplicatedSweeper`` puts them in place of the plugins' launchers (``engines.OWN_LAUNCHERS``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, open_dict

from mlflow_energy.sweep.engines import JobRequest, job_request

log = logging.getLogger("mlflow_energy.sweep")


class JobLost(Exception):
    """The engine lost a job before it finished; ``cause`` says how, in one sentence."""

    def __init__(self, job: PlannedJob, cause: str) -> None:
        super().__init__(cause)
        self.job, self.cause = job, cause


@dataclass(frozen=True)
class PlannedJob:
    num: int
    overrides: list[str]
    config: DictConfig  # the job's composed config, hydra node included
    request: JobRequest

    @property
    def out_dir(self) -> Path:
        return Path(str(self.config.hydra.sweep.dir)) / str(self.config.hydra.sweep.subdir)


def planned_jobs(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
                 cluster_has_gpus: bool) -> Iterator[PlannedJob]:  # fmt: skip
    """Each job's config, composed as the plugins compose it, and what it asks for."""
    from mlflow_energy.record.run_names import point_name, replicate_run_name
    from mlflow_energy.sweep.state import SweepState

    sweep = SweepState.read(Path(str(launcher.config.hydra.sweep.dir)))
    warned = False
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = f"job_id_for_{num}"  # the engine's own id is known only where the job runs
            config.hydra.job.num = num
        keys, replicates = (sweep.swept_keys, sweep.replicates) if sweep else ([], 1)
        name = replicate_run_name(point_name(list(overrides), keys), int(config.sweep.replicate), replicates)
        request = job_request(name, str(config.device), config.sweep.gpus_per_job, config.sweep.cpus_per_job,
                              cluster_has_gpus)  # fmt: skip
        if request.gpus == 0 and request.cpus is None and not warned:
            log.warning("CPU points ask the engine for its default CPUs (sweep.cpus_per_job=null), so several may run "
                        "at once on one node and disturb each other's energy and speed; for figures to publish, set "
                        "sweep.cpus_per_job to a node's core count.")  # fmt: skip
            warned = True
        yield PlannedJob(num, list(overrides), config, request)


def gathered(job: PlannedJob, result: Callable[[], Any], lost_errors: tuple[type[BaseException], ...],
             cause: Callable[[BaseException], str]) -> JobReturn:  # fmt: skip
    """The job's return (``result()``), or a FAILED return holding ``JobLost`` when the engine lost it."""
    try:
        return result()
    except lost_errors as exc:
        lost = JobReturn(overrides=job.overrides, status=JobStatus.FAILED)
        lost.return_value = JobLost(job, cause(exc))
        return lost


def wait_or_stop(done: Callable[[], bool], cancel: Callable[[], object], poll_s: float = 1.0) -> None:
    """Waits until ``done()``. After a Ctrl-C, cancels the jobs that have not ended, as a local
    sweep stops its running benchmark (which saves what it measured) and starts no other job."""
    from mlflow_energy.bench.interrupt import STOP

    while not done():
        if STOP.requested:
            cancel()
            return
        time.sleep(poll_s)


def first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


