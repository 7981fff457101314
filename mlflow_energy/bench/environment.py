"""What the numbers were measured on: hardware, clocks, versions, energy source per domain."""

from __future__ import annotations

import os
import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mlflow_energy import __version__
from mlflow_energy.meter.energy_meter import EnergyMeter

PACKAGES = ("torch", "transformers", "codecarbon", "nvidia-ml-py", "accelerate")


def package_versions() -> dict[str, str | None]:
    # __version__, not package metadata: the GPU machine runs the source tree uninstalled.
    versions: dict[str, str | None] = {"mlflow-energy": __version__}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def collect(meter: EnergyMeter) -> dict[str, Any]:
    import torch

    host = meter.host
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cpu_model": host.hardware.get("cpu_model") if host else platform.processor(),
        "cpu_count": os.cpu_count(),
        "ram_total_gb": host.hardware.get("ram_total_size") if host else None,
        "gpu_driver": meter.gpus.driver_version(),
        "gpus": meter.gpus.describe() if meter.gpus.devices else [],
        "gpu_counter_period_s": meter.counter_period_s(),
        "gpu_unavailable_reason": meter.gpus.unavailable_reason,
        "torch_threads": torch.get_num_threads(),
        "energy_sources": {
            "gpu": meter.gpu_source,
            "cpu": host.cpu_source if host else "none",
            "ram": host.ram_source if host else "none",
        },
    }
