"""Find and load a causal LM: a shipped architecture config, a local folder or a hub id."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.config import ConfigError, ModelConfig
from mlflow_energy.inference.quantization import quantize

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_TOKENIZER = SHIPPED_DIR / "tokenizer"
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt")


def shipped_models() -> list[str]:
    return sorted(p.parent.name for p in SHIPPED_DIR.glob("*/config.json"))


@dataclass(frozen=True)
class ModelSource:
    """Where a model's config, weights and tokenizer come from."""

    kind: str  # shipped | local | hub
    location: str  # folder path or hub id
    tokenizer_location: str
    has_weights: bool


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()


def _has_weights(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in _WEIGHT_FILES)


def resolve_model(model: ModelConfig) -> ModelSource:
    """Where ``model.name`` points; ConfigError if nowhere. Reads configs only, never weights."""
    name = model.name
    if name in shipped_models():
        folder = SHIPPED_DIR / name
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"model.name={name!r} is a folder without a config.json; point it at a saved model folder.")
    else:
        return _resolve_hub(model)
    tokenizer = folder if _has_tokenizer(folder) else SHIPPED_TOKENIZER
    source = ModelSource(
        kind="shipped" if folder.parent == SHIPPED_DIR else "local",
        location=str(folder),
        tokenizer_location=str(tokenizer),
        has_weights=_has_weights(folder),
    )
    if model.weights == "pretrained" and not source.has_weights:
        raise ConfigError(
            f"model.name={name!r} has no weights in {folder}; use model.weights=random to build it with random weights."
        )
    return source


def _resolve_hub(model: ModelConfig) -> ModelSource:
    """A hub id is accepted when its config is cached locally or the hub answers for it.

    One direct query with a short timeout instead of ``from_pretrained``, whose retries take
    over 20 s to fail on a machine without network.
    """
    from transformers import AutoConfig

    kwargs = {"revision": model.revision, "trust_remote_code": model.trust_remote_code}
    try:
        AutoConfig.from_pretrained(model.name, local_files_only=True, **kwargs)
    except Exception:  # not cached (or not a valid id): ask the hub once
        import huggingface_hub

        try:
            huggingface_hub.HfApi().model_info(model.name, revision=model.revision, timeout=5)
        except Exception as exc:
            raise ConfigError(
                f"model.name={model.name!r} is not a shipped model ({', '.join(shipped_models())}), a local "
                f"folder, or a Hugging Face model reachable from here ({type(exc).__name__}); fix the name "
                "or download the model first."
            ) from None
    return ModelSource(kind="hub", location=model.name, tokenizer_location=model.name, has_weights=True)


def torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load_tokenizer(source: ModelSource, model: ModelConfig) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        source.tokenizer_location,
        revision=model.revision if source.kind == "hub" else None,
        trust_remote_code=model.trust_remote_code,
    )
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(source: ModelSource, model: ModelConfig, device: str) -> Any:
    """The model in eval mode on ``device``: random weights from the config, or the saved ones,
    then quantized as ``model.quantization`` says."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-tensor progress bar is noise in logs
    dtype = torch_dtype(model.dtype)
    common = {"attn_implementation": model.attn_implementation, "trust_remote_code": model.trust_remote_code}
    torch.manual_seed(model.seed)
    if model.weights == "random":
        config = AutoConfig.from_pretrained(source.location, trust_remote_code=model.trust_remote_code)
        with torch.device(device):  # initialise on the target device: an 8B model never touches host RAM
            lm = AutoModelForCausalLM.from_config(config, dtype=dtype, **common)
        if model.device_map == "auto":
            lm = _shard(lm)
    else:
        lm = AutoModelForCausalLM.from_pretrained(
            source.location,
            revision=model.revision if source.kind == "hub" else None,
            dtype=dtype,
            use_safetensors=model.use_safetensors,
            device_map=model.device_map or device,
            **common,
        )
    lm.eval()
    return quantize(lm, model.quantization)


def _shard(lm: Any) -> Any:
    """Spreads a model built on one GPU over every visible GPU, balanced by memory, as
    ``from_pretrained(device_map="auto")`` does for saved weights."""
    from accelerate import dispatch_model, infer_auto_device_map
    from accelerate.utils import get_balanced_memory

    no_split = getattr(lm, "_no_split_modules", None) or []
    memory = get_balanced_memory(lm, no_split_module_classes=no_split)
    return dispatch_model(lm, device_map=infer_auto_device_map(lm, max_memory=memory, no_split_module_classes=no_split))


def input_device(lm: Any) -> Any:
    """Where input ids must go: the device of the embedding layer (GPU 0 of a sharded model)."""
    return lm.get_input_embeddings().weight.device


def parameter_count(lm: Any) -> int:
    return sum(p.numel() for p in lm.parameters())
