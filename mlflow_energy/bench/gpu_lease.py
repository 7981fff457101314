"""One GPU per concurrent job: parallel sweep jobs on one host lease GPUs through lock files.

Concurrent jobs on one device disturb each other's energy figures, so each job of a parallel
sweep takes a free GPU (a file lock on ``<sweep dir>/gpu_leases/<index>.lock``) for the
whole benchmark and hands its child process only that GPU through CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger("mlflow_energy.sweep")


def visible_gpu_ids() -> list[str]:
    """The GPUs this process may hand out, as CUDA_VISIBLE_DEVICES entries."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [e.strip() for e in listed.split(",") if e.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


@contextmanager
def gpu_lease(lease_dir: Path, gpu_ids: list[str], poll_s: float = 0.5) -> Iterator[str]:
    """Blocks until one of ``gpu_ids`` is free, yields it, releases it on exit."""
    lease_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for gpu in gpu_ids:
            lock = FileLock(lease_dir / f"{gpu}.lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield gpu
            finally:
                lock.release()
            return
        if not waited:
            log.info("all %d GPUs are leased to other jobs of this sweep; waiting for one", len(gpu_ids))
            waited = True
        time.sleep(poll_s)


@contextmanager
def isolated_device(device: str, parallel_jobs: int, lease_dir: Path) -> Iterator[None]:
    """For a parallel sweep job: lease a GPU (setting CUDA_VISIBLE_DEVICES, so the child's
    ``auto``/``cuda`` is that GPU), or warn that concurrent jobs share the measured device.
    An explicit ``cuda:N`` is respected as given."""
    if parallel_jobs <= 1:
        yield
        return
    gpus = visible_gpu_ids() if device in ("auto", "cuda") else []
    if not gpus:
        log.warning(
            "%d jobs run at once on %s: they disturb each other's energy and speed; "
            "use the basic launcher (one job at a time) for figures to publish.", parallel_jobs, device,
        )  # fmt: skip
        yield
        return
    if len(gpus) < parallel_jobs:
        log.warning("%d parallel jobs share %d GPUs: jobs wait for a free GPU.", parallel_jobs, len(gpus))
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    with gpu_lease(lease_dir, gpus) as gpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # the benchmark child sees this GPU only
        log.info("this job measures GPU %s alone", gpu)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = previous
