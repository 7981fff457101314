"""What this machine can run of a configuration, checked before any work: a device it lacks, a
dtype its CPU cannot multiply, a quantization or pruning method on the wrong device or without
its library; and which device ``auto`` means here.
The configuration's own checks, which need no machine, are config.py's ``validate``."""

from __future__ import annotations

import os
import sys

from mlflow_energy.config import ConfigError, RunConfig, require
from mlflow_energy.inference import pruning, quantization


def check_hardware_support(config: RunConfig) -> None:
    """Refuses, before any work, what this machine cannot run: a dtype its CPU cannot multiply,
    a quantization method on the wrong device or without its library."""
    check_device(config.device)
    device = resolve_device(config.device)
    require(
        config.model.device_map in (None, "auto"),
        f"model.device_map={config.model.device_map!r} is not null or auto; pick one.",
    )
    require(
        config.model.device_map is None or device.startswith("cuda"),
        "model.device_map=auto shards a model over GPUs, but this run is on the CPU; drop it or use a GPU.",
    )
    reason = quantization.refusal(config.model.quantization, config.model.dtype, device)
    require(reason is None, reason or "")
    _check_pruning(config, device)
    require(
        not (config.backend.name == "static_compile" and config.model.quantization == "dynamic_int8"),
        "backend.name=static_compile cannot compile PyTorch's dynamic int8 modules; use backend.name=eager.",
    )
    if device == "cpu" and config.model.dtype != "float32":
        import torch

        dtype = getattr(torch, config.model.dtype)
        try:
            torch.ones(4, 4, dtype=dtype) @ torch.ones(4, 4, dtype=dtype)
        except RuntimeError:
            raise ConfigError(
                f"model.dtype={config.model.dtype} matrix multiplication is not supported by this CPU; "
                "use model.dtype=float32."
            ) from None


def _check_pruning(config: RunConfig, device: str) -> None:
    """What this machine can run of the pruning (the layer count is checked against the model's
    config in inference/models.py)."""
    p = config.model.pruning
    capability = None
    if device.startswith("cuda"):
        import torch

        capability = torch.cuda.get_device_capability(device)
    reason = pruning.refusal(p.method, p.sparsity, config.model.dtype, device, capability)
    require(reason is None, reason or "")
    if p.method == pruning.SEMI_STRUCTURED:
        require(config.model.quantization == "none", f"model.pruning.method={p.method} and model.quantization="
                f"{config.model.quantization} are two ways to store the weights; pick one.")  # fmt: skip
        require(config.backend.name == "eager", f"model.pruning.method={p.method} runs with backend.name=eager; "
                "this tool does not compile PyTorch's semi-structured sparse weights.")  # fmt: skip


def check_device(device: str) -> None:
    """The device is one this machine has."""
    kind, _, index = device.partition(":")
    require(
        device in ("auto", "cpu", "cuda") or (kind == "cuda" and index.isdigit()),
        f"device={device!r} is not auto, cpu, cuda or cuda:N; pick one.",
    )
    if kind != "cuda":
        return
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    require(visible > 0, f"device={device!r} asks for a GPU but none is visible here; use device=cpu or device=auto.")
    require(
        not index or int(index) < visible,
        f"device={device!r} asks for GPU {index} but only {visible} visible; pick cuda:0 to cuda:{visible - 1}.",
    )


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` where a GPU is visible, else ``cpu``; ``cuda`` -> ``cuda:0``."""
    if device == "auto":
        return "cuda:0" if _gpu_driver_present() and _torch_sees_a_gpu() else "cpu"
    return "cuda:0" if device == "cuda" else device


# The device files a GPU driver makes on Linux: NVIDIA's, ROCm's and WSL's. Where none exists, torch
# cannot see a GPU, and its import (a second on a small CPU) is not paid to be told so.
GPU_DRIVER_FILES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def _gpu_driver_present() -> bool:
    return not sys.platform.startswith("linux") or any(os.path.exists(p) for p in GPU_DRIVER_FILES)


def _torch_sees_a_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
