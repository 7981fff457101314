"""Weight quantization knobs: dynamic int8 on CPU (PyTorch built in) and int8 weight-only on
GPU (torchao, the optional extra ``quantization``)."""

from __future__ import annotations

import warnings
from typing import Any

NONE, DYNAMIC_INT8, INT8_WEIGHT_ONLY = "none", "dynamic_int8", "int8_weight_only"
QUANTIZATIONS = (NONE, DYNAMIC_INT8, INT8_WEIGHT_ONLY)


def refusal(method: str, dtype: str, device: str) -> str | None:
    """Why this combination cannot run here, in one sentence; None when it can."""
    on_gpu = device.startswith("cuda")
    if method == DYNAMIC_INT8:
        if on_gpu:
            return (f"model.quantization={method} runs on the CPU only; on a GPU use "
                    f"model.quantization={INT8_WEIGHT_ONLY}, or set device=cpu.")  # fmt: skip
        if dtype != "float32":
            return f"model.quantization={method} quantizes float32 layers; set model.dtype=float32."
    if method == INT8_WEIGHT_ONLY:
        if not on_gpu:
            return f"model.quantization={method} needs a GPU; on the CPU use model.quantization={DYNAMIC_INT8}."
        try:
            import torchao  # noqa: F401
        except ImportError:
            return f"model.quantization={method} needs torchao; pip install 'mlflow-energy[quantization]'."
        if dtype == "float32":
            return f"model.quantization={method} keeps activations in model.dtype; set model.dtype=bfloat16."
    return None


def quantize(model: Any, method: str) -> Any:
    """The model with its nn.Linear weights in int8 (the model itself for ``none``)."""
    import torch

    if method == DYNAMIC_INT8:
        with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao, twice
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if method == INT8_WEIGHT_ONLY:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        quantize_(model, Int8WeightOnlyConfig())
    return model


def _stores_int8(weight: Any) -> bool:
    """True when the tensor's payload is 8-bit integers (torch quantized, or a torchao subclass
    whose int data sits in ``qdata`` / ``int_data`` / ``tensor_impl``)."""
    import torch

    for name in ("qdata", "int_data"):
        payload = getattr(weight, name, None)
        if payload is not None:
            return payload.dtype == torch.int8
    impl = getattr(weight, "tensor_impl", None)
    if impl is not None:
        return _stores_int8(impl)
    return getattr(weight, "dtype", None) in (torch.qint8, torch.int8)


def int8_linear_count(model: Any) -> int:
    """Modules whose stored weights really are 8-bit integers."""
    count = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        weight = weight() if callable(weight) else weight  # a dynamic quantized Linear's is a method
        if weight is not None and _stores_int8(weight):
            count += 1
    return count
