"""What this machine can run of a configuration, checked before any work: a device it lacks, a
dtype its CPU cannot multiply, a quantization or pruning method on the wrong device or without
its library; and which device ``auto`` means here.
The configuration's own checks, which need no machine, are config.py's ``validate``."""

from __future__ import annotations

import functools
import importlib.util
import os
import runpy
import sys

from mlflow_energy.config import ConfigError, RunConfig, require
from mlflow_energy.inference import pruning, quantization
from mlflow_energy.meter.gpu import nvml_compute_capabilities


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
        capability = visible_gpus()[int(device.partition(":")[2] or 0)]
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
    visible = len(visible_gpus())
    require(visible > 0, f"device={device!r} asks for a GPU but none is visible here; use device=cpu or device=auto.")
    require(
        not index or int(index) < visible,
        f"device={device!r} asks for GPU {index} but only {visible} visible; pick cuda:0 to cuda:{visible - 1}.",
    )


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` where a GPU is visible, else ``cpu``; ``cuda`` -> ``cuda:0``."""
    if device == "auto":
        return "cuda:0" if visible_gpus() else "cpu"
    return "cuda:0" if device == "cuda" else device


def visible_gpus() -> tuple[tuple[int, int], ...]:
    """The compute capability of each GPU this process's torch can use, by CUDA index; empty on a
    machine without one. Asked of NVML, which answers without starting CUDA, where it can."""
    return _visible_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"))


@functools.cache
def _visible_gpus(cuda_visible_devices: str | None) -> tuple[tuple[int, int], ...]:
    if not _gpu_driver_present() or not _torch_built_for_gpus():
        return ()
    from_nvml = nvml_compute_capabilities(cuda_visible_devices)
    if from_nvml is not None:
        return tuple(from_nvml)
    import torch  # no NVML (ROCm, WSL): torch asks the driver

    if not torch.cuda.is_available():
        return ()
    return tuple(torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count()))


# The device files a GPU driver makes on Linux: NVIDIA's, ROCm's and WSL's. Where none exists, torch
# cannot see a GPU, and nothing is asked.
GPU_DRIVER_FILES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def _gpu_driver_present() -> bool:
    return not sys.platform.startswith("linux") or any(os.path.exists(p) for p in GPU_DRIVER_FILES)


def _torch_built_for_gpus() -> bool:
    """Whether the installed torch is a CUDA or ROCm build (a CPU build sees no GPU), read from its
    version file where torch is not imported yet: its import takes seconds."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.version.cuda or torch.version.hip)
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    build = runpy.run_path(os.path.join(next(iter(spec.submodule_search_locations)), "version.py"))
    return bool(build.get("cuda") or build.get("hip"))
