"""Pruning knobs, applied to a loaded model before anything is measured:

- ``magnitude``: the smallest weights of each decoder linear layer zeroed (``sparsity`` of
  them), made permanent. Dense kernels still multiply the zeros, so this saves no compute.
- ``semi_structured``: 2:4 sparsity (the two smallest of every four weights zeroed) stored in
  PyTorch's semi-structured format, so GPUs with sparse tensor cores skip half the products.
- ``drop_layers``: whole decoder layers removed (a count: the deepest ones before the last,
  the block that matters least; or a list of indices), so the model is smaller on any device.

Only the decoder layers' projections are pruned: the embeddings and the output head are left
dense, as magnitude-pruning methods for LLMs (SparseGPT, Wanda) do.

This file imports torch and nothing else of mlflow-energy: a registered model ships it beside
``quantization.py`` and prunes the saved weights again when it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NONE, MAGNITUDE, SEMI_STRUCTURED = "none", "magnitude", "semi_structured"
METHODS = (NONE, MAGNITUDE, SEMI_STRUCTURED)
SEMI_STRUCTURED_SPARSITY = 0.5  # two of every four
SEMI_STRUCTURED_DTYPES = ("float16", "bfloat16")
SPARSE_TENSOR_CORES = (8, 0)  # compute capability from which GPUs have them (Ampere)


@dataclass
class PruningOutcome:
    """What pruning left, counted on the model (not taken from the configuration).

    Attributes:
        sparsity_reached: zero weights among the pruned layers' weights, a fraction (0-1).
        pruned_weights: the weights of the layers that were pruned (their count, zeros included).
        nonzero_parameters: the model's parameters less the weights pruning zeroed.
        decoder_layers: decoder layers left.
        layers_removed: the indices (as numbered before removal) of the decoder layers removed.
    """

    sparsity_reached: float
    pruned_weights: int
    nonzero_parameters: int
    decoder_layers: int
    layers_removed: list[int]


def applies(method: str, drop_layers: Any) -> bool:
    """Whether this pruning changes the model: a method, or decoder layers to remove."""
    return method != NONE or drop_layers not in (0, [])


def refusal(method: str, sparsity: float, dtype: str, device: str, capability: tuple[int, int] | None) -> str | None:
    """Why this pruning cannot run here, in one sentence; None when it can. ``capability``:
    the GPU's compute capability (None on the CPU)."""
    if method == MAGNITUDE and not 0 < sparsity < 1:
        return f"model.pruning.sparsity={sparsity} must be a fraction above 0 and below 1, such as 0.5."
    if method != SEMI_STRUCTURED:
        return None
    if not device.startswith("cuda") or capability is None:
        return (f"model.pruning.method={SEMI_STRUCTURED} (2:4) runs on GPUs with sparse tensor cores only; on the "
                f"CPU use model.pruning.method={MAGNITUDE}, which zeroes weights without saving compute.")  # fmt: skip
    if capability < SPARSE_TENSOR_CORES:
        major, minor = capability
        return (f"model.pruning.method={SEMI_STRUCTURED} (2:4) needs sparse tensor cores (compute capability 8.0 or "
                f"newer); this GPU has {major}.{minor}, so use model.pruning.method={MAGNITUDE}.")  # fmt: skip
    if dtype not in SEMI_STRUCTURED_DTYPES:
        return (f"model.pruning.method={SEMI_STRUCTURED} (2:4) computes in float16 or bfloat16; "
                "set model.dtype=bfloat16.")  # fmt: skip
    if sparsity != SEMI_STRUCTURED_SPARSITY:
        return (f"model.pruning.method={SEMI_STRUCTURED} zeroes two of every four weights, a sparsity of 0.5; "
                f"drop model.pruning.sparsity={sparsity}.")  # fmt: skip
    return None


def layers_to_drop(drop_layers: int | list[int], total: int) -> list[int]:
    """The decoder layer indices ``drop_layers`` names, sorted; ValueError (one sentence) when
    it names none that exist or would leave no layer. A count removes the deepest layers before
    the last one."""
    key = "model.pruning.drop_layers"
    if isinstance(drop_layers, bool) or not isinstance(drop_layers, int | list):
        raise ValueError(f"{key}={drop_layers!r} is neither a count nor a list of layer indices.")
    if isinstance(drop_layers, int):
        if not 0 <= drop_layers < total:
            raise ValueError(f"{key}={drop_layers} must be from 0 to {total - 1}: the model has {total} decoder layers "
                             "and at least one must stay.")  # fmt: skip
        return list(range(total - 1 - drop_layers, total - 1))
    indices = sorted(set(drop_layers))
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < total for i in indices):
        raise ValueError(f"{key}={drop_layers} must list layer indices from 0 to {total - 1} (the model has {total}).")
    if len(indices) >= total:
        raise ValueError(f"{key}={drop_layers} removes every decoder layer; keep at least one.")
    return indices


def prune(model: Any, method: str, sparsity: float, drop_layers: int | list[int]) -> PruningOutcome:
    """Removes the layers ``drop_layers`` names, then prunes the rest by ``method``; the model is
    changed in place. ValueError when the model cannot be pruned that way."""
    import torch

    layers = decoder_layers(model)
    removed = layers_to_drop(drop_layers, len(layers))
    if removed:
        _remove_layers(model, layers, removed)
    targets = [] if method == NONE else [m for m in layers.modules() if isinstance(m, torch.nn.Linear)]
    if method != NONE and not targets:
        raise ValueError(f"model.pruning.method={method} prunes nn.Linear layers, and this model's decoder layers "
                         "have none; use model.pruning.drop_layers.")  # fmt: skip
    with torch.no_grad():
        if method == MAGNITUDE:
            for linear in targets:
                _zero_smallest(linear, sparsity)
        elif method == SEMI_STRUCTURED:
            for linear in targets:
                keep_two_of_four(linear)
        zeros = sum(_zero_count(m.weight) for m in targets)
        pruned = sum(m.weight.numel() for m in targets)
        if method == SEMI_STRUCTURED:  # counted above on the dense masked weights; now stored compressed
            for linear in targets:
                _to_semi_structured(linear)
        nonzero = sum(p.numel() for p in model.parameters()) - zeros
    return PruningOutcome(zeros / pruned if pruned else 0.0, pruned, nonzero, len(layers), removed)


def decoder_layers(model: Any) -> Any:
    """The model's stack of decoder layers: the ModuleList as long as ``num_hidden_layers``."""
    import torch

    total = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == total:
            return module
    raise ValueError(f"no stack of {total} decoder layers was found in {type(model).__name__}; it cannot be pruned.")


def _remove_layers(model: Any, layers: Any, removed: list[int]) -> None:
    """Drops ``removed`` from ``layers`` and renumbers what stays: each attention layer finds its
    KV cache slot by ``layer_idx``, and caches are sized from the config."""
    for index in reversed(removed):
        del layers[index]  # ModuleList renumbers what follows
    for index, layer in enumerate(layers):
        for module in layer.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = index
    config = model.config
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [t for i, t in enumerate(config.layer_types) if i not in removed]
    config.num_hidden_layers = len(layers)


def _zero_smallest(linear: Any, sparsity: float) -> None:
    """Unstructured magnitude pruning through torch.nn.utils.prune, then made permanent (the
    mask folded into the weight, so no hook runs while measuring)."""
    from torch.nn.utils import prune as torch_prune

    torch_prune.l1_unstructured(linear, "weight", amount=sparsity)
    torch_prune.remove(linear, "weight")


def keep_two_of_four(linear: Any) -> None:
    """Zeroes the two smallest of every four consecutive weights along each row (the input axis:
    the layout sparse tensor cores read)."""
    weight = linear.weight
    if weight.shape[-1] % 4:
        raise ValueError(f"model.pruning.method={SEMI_STRUCTURED}: a {tuple(weight.shape)} weight's rows do not split "
                         f"into groups of four; use model.pruning.method={MAGNITUDE} for this model.")  # fmt: skip
    groups = weight.detach().reshape(-1, 4)
    smallest = groups.abs().argsort(dim=1)[:, :2]
    weight.copy_(groups.scatter(1, smallest, 0).reshape(weight.shape))


def _to_semi_structured(linear: Any) -> None:
    """The weight stored in PyTorch's semi-structured sparse format, so matmuls run on the
    sparse kernels; ValueError when a layer's shape is one those kernels do not take."""
    import torch
    from torch.sparse import to_sparse_semi_structured

    try:
        linear.weight = torch.nn.Parameter(to_sparse_semi_structured(linear.weight.detach()), requires_grad=False)
    except RuntimeError as exc:
        raise ValueError(
            f"model.pruning.method={SEMI_STRUCTURED}: a {tuple(linear.weight.shape)} weight cannot be stored 2:4 "
            f"({str(exc).splitlines()[0]}); use model.pruning.method={MAGNITUDE} for this model."
        ) from None


def _zero_count(weight: Any) -> int:
    return int(weight.numel() - weight.count_nonzero().item())
