"""``hydra/launcher=submitit_slurm`` and ``submitit_local``: the submitit plugin's launchers,
one job per sweep job with its own name and GPUs (``jobs.py`` says what changes and why)."""

from __future__ import annotations

import logging
import subprocess
import time
from abc import abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from mlflow_energy.sweep.jobs import PlannedJob, first_line, gathered, planned_jobs, wait_or_stop

log = logging.getLogger("mlflow_energy.sweep")
LOAD_AND_LOG_S = 600  # a job's time outside the benchmark's own timeout: start-up, a cold model load, logging
# SLURM states of a job the scheduler ended before its work did.
SCHEDULER_ENDINGS = ("CANCELLED", "PREEMPTED", "NODE_FAIL", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY", "BOOT_FAIL")
STILL_GOING = ("PENDING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "UNKNOWN")


class StoppedByScheduler(Exception):
    """A job the scheduler ended (cancelled, preempted, timed out) that still returned; ``state``
    is the scheduler's."""

    def __init__(self, state: str) -> None:
        super().__init__("the scheduler stopped its benchmark")
        self.state = state


class _SubmititJobs(BaseSubmititLauncher):
    """One submitit job per sweep job (not an array: each has its own name and GPUs)."""

    def _executor(self) -> Any:
        import submitit

        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())  # the rest take the executor's prefix
        executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        return executor

    @abstractmethod
    def _cluster_has_gpus(self) -> bool: ...

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit  # here, as the plugin does: Hydra's plugin scan imports this module at every start

        assert self.config is not None
        executor = self._executor()
        gpus_set_by_user = any(self.params.get(k) for k in ("gpus_per_node", "gpus_per_task", "gres"))
        jobs = list(planned_jobs(self, job_overrides, initial_job_idx, self._cluster_has_gpus()))
        self._warn_if_cut_short(max(float(job.config.bench.timeout_s) for job in jobs))
        submitted = []
        for job in jobs:
            per_job: dict[str, Any] = {"name": job.request.name}
            if not gpus_set_by_user:
                per_job["gpus_per_node"] = job.request.gpus
            if job.request.cpus and not self.params.get("cpus_per_task"):
                per_job["cpus_per_task"] = job.request.cpus
            executor.update_parameters(**per_job)
            handle = executor.submit(self, job.overrides, "hydra.sweep.dir", job.num, f"job_id_for_{job.num}",
                                     Singleton.get_state())  # fmt: skip
            submitted.append((job, handle))
        handles = [handle for _, handle in submitted]
        wait_or_stop(lambda: all(h.done() for h in handles),
                     lambda: [h.cancel(check=False) for h in handles if not h.done()])  # fmt: skip
        lost = (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedJobError, StoppedByScheduler)

        def gather(pair: tuple[PlannedJob, Any]) -> JobReturn:
            job, handle = pair
            return gathered(job, partial(self._result, handle), lost, partial(self._cause, handle))

        # At once: submitit waits 15 s for the result file of each job that left none.
        with ThreadPoolExecutor(max_workers=min(32, len(submitted))) as pool:
            return list(pool.map(gather, submitted))

    def _warn_if_cut_short(self, bench_timeout_s: float) -> None:
        """The engine's time limit should leave the tool's own timeout (which keeps what was
        measured) room to act, and the job time to load the model and log its result."""
        limit_min = self.params.get("timeout_min")
        if limit_min is not None and limit_min * 60 < bench_timeout_s + LOAD_AND_LOG_S:
            log.warning("hydra.launcher.timeout_min=%s may end a job before bench.timeout_s=%.0f s and the logging "
                        "after it; set hydra.launcher.timeout_min to at least %d.", limit_min, bench_timeout_s,
                        -(-(bench_timeout_s + LOAD_AND_LOG_S) // 60))  # fmt: skip

    def _result(self, handle: Any) -> JobReturn:
        """The job's return; ``StoppedByScheduler`` when the scheduler ended it, even where the job
        (which outlives the SIGTERM that stops its benchmark) returned the partial result it logged."""
        result = handle.results()[0]
        state = self._final_state(handle)
        if state.split(" ")[0] in SCHEDULER_ENDINGS:
            raise StoppedByScheduler(state)
        return result

    def _cause(self, handle: Any, exc: BaseException) -> str:
        import submitit

        how = "it left no result" if isinstance(exc, submitit.core.utils.UncompletedJobError) else first_line(exc)
        state = exc.state if isinstance(exc, StoppedByScheduler) else self._final_state(handle)
        return f"the {self._EXECUTOR} job {handle.job_id} ended in state {state}: {how}"

    def _final_state(self, handle: Any) -> str:
        return str(handle.state)


class SlurmJobs(_SubmititJobs):
    """``hydra/launcher=submitit_slurm``: GPU points ask for GPUs through ``--gpus-per-node``."""

    _EXECUTOR = "slurm"

    def _final_state(self, handle: Any, wait_s: float = 30.0) -> str:
        """The job's state from sacct, asked now (submitit's cached one lags by up to half the
        job's age), once it has left the running states, or after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            state = handle.get_info(mode="force").get("State", "UNKNOWN")
            if state.split(" ")[0] not in STILL_GOING or time.monotonic() > deadline:
                return state
            time.sleep(1.0)

    def _cluster_has_gpus(self) -> bool:
        try:
            gres = subprocess.run(["sinfo", "--noheader", "--format=%G"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return "gpu" in gres.stdout


class SubmititLocalJobs(_SubmititJobs):
    """``hydra/launcher=submitit_local``: jobs as local processes, submitit's way."""

    _EXECUTOR = "local"

    def _cluster_has_gpus(self) -> bool:
        from mlflow_energy.bench.gpu_lease import visible_gpu_ids

        return bool(visible_gpu_ids())
