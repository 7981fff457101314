"""What this machine can run of a configuration, checked before any work: a dtype its CPU
cannot multiply, a quantization or pruning method on the wrong device or without its library.
The configuration's own checks, which need no machine, are config.py's ``validate``."""

from __future__ import annotations

from mlflow_energy.config import ConfigError, RunConfig, require, resolve_device
from mlflow_energy.inference import pruning, quantization


def check_hardware_support(config: RunConfig) -> None:
    """Refuses, before any work, what this machine cannot run: a dtype its CPU cannot multiply,
    a quantization method on the wrong device or without its library."""
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
