"""The measured work: a prefill forward pass and a fixed-length greedy generate."""

from __future__ import annotations

from typing import Any

from mlflow_energy.adapters.transformers import compile_on_any_device
from mlflow_energy.inference.prompts import Batch


def fixed_length_config(
    model: Any, tokenizer: Any, new_tokens: int, cache: str = "dynamic", compiled: bool = False
) -> Any:
    """Greedy, exactly ``new_tokens`` per row: min = max and EOS suppressed until then, so every
    run generates the same number of tokens and energy per token is comparable. ``cache``:
    transformers' dynamic KV cache, or a static one preallocated to the full length.
    ``compiled``: static cache plus torch.compile of the decoding step (fixed shapes, so it
    compiles once, in the warm-up; CUDA graphs on a GPU)."""
    from transformers import CompileConfig, GenerationConfig

    compile_config = None
    if compiled:
        cache = "static"
        on_gpu = model.device.type == "cuda"
        compile_config = CompileConfig(fullgraph=True, mode="reduce-overhead" if on_gpu else "default")
        if not on_gpu:
            compile_on_any_device(compile_config)
    return GenerationConfig(
        compile_config=compile_config,
        cache_implementation=None if cache == "dynamic" else cache,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=model.config.eos_token_id,
    )


def generate(model: Any, batch: Batch, generation_config: Any) -> Any:
    """Generated token ids only, shape (batch_size, new_tokens)."""
    import torch

    with torch.inference_mode():
        output = model.generate(**batch.as_kwargs(), generation_config=generation_config)
    generated = output[:, batch.input_ids.shape[1] :]
    if generated.shape[1] != generation_config.max_new_tokens:
        raise RuntimeError(
            f"generate returned {generated.shape[1]} new tokens instead of {generation_config.max_new_tokens}"
        )
    return generated


def prefill(model: Any, batch: Batch) -> Any:
    """One forward pass over the prompt filling the KV cache: the work before the first token."""
    import torch

    with torch.inference_mode():
        return model(**batch.as_kwargs(), use_cache=True).logits[:, -1].argmax(-1)
