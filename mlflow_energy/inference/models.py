"""Find and load a causal LM: a shipped architecture config, a local folder or a hub id."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.adapters.transformers import names_config_class
from mlflow_energy.config import ConfigError, ModelConfig, RunConfig, pruning_on
from mlflow_energy.inference.files import read_text_file
from mlflow_energy.inference.pruning import PruningOutcome, layers_to_drop, prune
from mlflow_energy.inference.quantization import quantize

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_TOKENIZER = SHIPPED_DIR / "tokenizer"
_SAFETENSORS = ("*.safetensors",)
_PICKLED_WEIGHTS = ("*.bin", "*.pt")  # loaded by unpickling, which can run code: use_safetensors refuses them


def shipped_models() -> list[str]:
    return sorted(p.parent.name for p in SHIPPED_DIR.glob("*/config.json"))


def shipped_model_path(name: str = "tiny-stories") -> Path:
    """The folder of a model shipped with the package, for ``from_pretrained`` or ``transformers
    serve``: ``tiny-stories`` and ``tiny-stories-distilled`` hold weights and a tokenizer, the
    others a ``config.json`` only (``model.weights=random``). ValueError for any other name."""
    if name not in shipped_models():
        raise ValueError(f"no shipped model is named {name!r}; the shipped ones are {', '.join(shipped_models())}.")
    return SHIPPED_DIR / name


@dataclass(frozen=True)
class ModelSource:
    """Where a model's config, weights and tokenizer come from."""

    kind: str  # shipped | local | hub
    location: str  # folder path or hub id
    tokenizer_location: str
    has_weights: bool
    max_positions: int | None = None  # the config's max_position_embeddings, where it has one
    decoder_layers: int | None = None  # the config's num_hidden_layers, where it has one


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()


def _has_files(folder: Path, patterns: tuple[str, ...]) -> bool:
    return any(any(folder.glob(pattern)) for pattern in patterns)


def resolve_model(model: ModelConfig) -> ModelSource:
    """Where ``model.name`` points; ConfigError if nowhere, or if loading it is bound to be
    refused. Reads configs only, never weights."""
    name = model.name
    if name in shipped_models():
        folder = SHIPPED_DIR / name
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
    else:
        return _resolve_hub(model)
    config = _read_model_config(folder, name)
    shipped = folder.parent == SHIPPED_DIR
    if not shipped:  # the shipped configs are architectures transformers knows (a test checks)
        _check_custom_code(config, model)
    tokenizer = folder if _has_tokenizer(folder) else SHIPPED_TOKENIZER
    source = ModelSource(
        kind="shipped" if shipped else "local",
        location=str(folder),
        tokenizer_location=str(tokenizer),
        has_weights=_has_files(folder, _SAFETENSORS + _PICKLED_WEIGHTS),
        max_positions=_config_int(config, "max_position_embeddings"),
        decoder_layers=_config_int(config, "num_hidden_layers"),
    )
    if model.weights == "pretrained":
        _check_weights(source, model)
    return source


def _read_model_config(folder: Path, name: str) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ConfigError(f"model.name={name!r} is a folder without a config.json; point it at a saved model folder.")
    try:
        config = json.loads(read_text_file(path, "model.name"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"model.name={name!r}: {path} is not valid JSON ({exc.msg}, line {exc.lineno}); "
            "fix it or save the model again."
        ) from None
    if not isinstance(config, dict):
        raise ConfigError(f"model.name={name!r}: {path} holds no JSON object; fix it or save the model again.")
    return config


def _known_model_types() -> Any:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return CONFIG_MAPPING


def _is_known_model_type(model_type: Any) -> bool:
    """Whether transformers has its own code for ``model_type``: read from its source where it can
    be (importing its config mapping imports torch: 3 s of a command's checks), else asked of the
    mapping itself."""
    return names_config_class(model_type) or model_type in _known_model_types()


def _check_custom_code(config: dict[str, Any], model: ModelConfig) -> None:
    """transformers builds a model_type it knows with its own code (an ``auto_map`` is then
    ignored); any other type needs the model's own code, which trust_remote_code=false never runs."""
    model_type = config.get("model_type")
    if _is_known_model_type(model_type):
        return
    if "auto_map" not in config:
        import transformers

        raise ConfigError(
            f"model.name={model.name!r} has model_type={model_type!r} in its config.json, which transformers "
            f"{transformers.__version__} does not know; fix the model_type or upgrade transformers."
        )
    if not model.trust_remote_code:
        raise ConfigError(
            f"model.name={model.name!r} needs its own code (model_type={model_type!r}, auto_map in its config.json), "
            "which model.trust_remote_code=false does not run; set model.trust_remote_code=true if you trust that code."
        )


def _config_int(config: dict[str, Any], key: str) -> int | None:
    """A number of the model's config: under its own name, else under the name its class stores
    it (GPT-2: n_positions for max_position_embeddings, n_layer for num_hidden_layers). The class
    is looked up only then: transformers' config classes import torch (seconds on a fresh machine)."""
    value = config.get(key)
    if not isinstance(value, int) and config.get("model_type") in (known := _known_model_types()):
        value = config.get(known[config["model_type"]].attribute_map.get(key, key))
    return value if isinstance(value, int) else None


def _check_weights(source: ModelSource, model: ModelConfig) -> None:
    folder = source.location
    if not source.has_weights:
        raise ConfigError(
            f"model.name={model.name!r} has no weights in {folder}; "
            "use model.weights=random to build it with random weights."
        )
    if model.use_safetensors and not _has_files(Path(folder), _SAFETENSORS):
        raise ConfigError(
            f"model.name={model.name!r} has only .bin/.pt weights in {folder}, which model.use_safetensors=true "
            "refuses to load; convert them to safetensors, or set model.use_safetensors=false if you trust the files."
        )


def validate_workload_fits(source: ModelSource, config: RunConfig) -> None:
    """A prompt and its output must fit the model's positions: beyond them a learned position
    table fails and rotary positions run where the model was never trained."""
    w = config.workload
    new_key, new_tokens = (("workload.new_tokens", w.new_tokens) if config.scenario == "batch"
                           else ("serving.max_tokens", config.serving.max_tokens or 1))  # fmt: skip
    total = w.prompt_tokens + new_tokens
    if source.max_positions is not None and total > source.max_positions:
        raise ConfigError(
            f"workload.prompt_tokens + {new_key} = {w.prompt_tokens} + {new_tokens} = {total} exceeds "
            f"the {source.max_positions} positions of model.name={config.model.name!r}; lower them or pick a model "
            "with more positions."
        )


def validate_pruning_fits(source: ModelSource, model: ModelConfig) -> None:
    """The decoder layers model.pruning.drop_layers names exist, and one at least stays."""
    if source.decoder_layers is None or not pruning_on(model.pruning):
        return
    try:
        layers_to_drop(model.pruning.drop_layers, source.decoder_layers)
    except ValueError as exc:
        raise ConfigError(f"model.name={model.name!r}: {exc}") from None


def _resolve_hub(model: ModelConfig) -> ModelSource:
    """A hub id is accepted when its config is cached locally or the hub answers for it.

    The cached config.json is read directly (``AutoConfig`` would import transformers and torch:
    seconds of the checks on a fresh machine); one direct query with a short timeout instead of
    ``from_pretrained``, whose retries take over 20 s to fail on a machine without network.
    """
    config = _cached_hub_config(model)
    if config is not None:
        _check_custom_code(config, model)
    else:  # not cached (or not a valid id): ask the hub once
        import huggingface_hub

        config = {}
        try:
            huggingface_hub.HfApi().model_info(model.name, revision=model.revision, timeout=5)
        except Exception as exc:
            raise ConfigError(
                f"model.name={model.name!r} is not a shipped model ({', '.join(shipped_models())}), a local "
                f"folder, or a Hugging Face model reachable from here ({type(exc).__name__}); fix the name "
                "or download the model first."
            ) from None
    return ModelSource(kind="hub", location=model.name, tokenizer_location=model.name, has_weights=True,
                       max_positions=_config_int(config, "max_position_embeddings"),
                       decoder_layers=_config_int(config, "num_hidden_layers"))  # fmt: skip


def _cached_hub_config(model: ModelConfig) -> dict[str, Any] | None:
    """The hub model's config.json in the local Hugging Face cache; None where it is not there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(model.name, "config.json", revision=model.revision)
    except Exception:  # not a valid repo id: the hub's answer names the problem
        return None
    if not isinstance(path, str):  # None, or a marker that the file is known to be absent
        return None
    return _read_model_config(Path(path).parent, model.name)


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


@dataclass
class LoadedModel:
    """A model ready to measure, and what pruning left of it (None: not pruned)."""

    model: Any
    pruning: PruningOutcome | None


def load_model(source: ModelSource, model: ModelConfig, device: str) -> LoadedModel:
    """The model in eval mode on ``device``: random weights from the config, or the saved ones,
    then pruned as ``model.pruning`` says and quantized as ``model.quantization`` says."""
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
    outcome = None
    if pruning_on(model.pruning):
        p = model.pruning
        try:
            outcome = prune(lm, p.method, p.sparsity, p.drop_layers)
        except ValueError as exc:  # a layer shape the sparse kernels refuse: known only once loaded
            raise ConfigError(str(exc)) from None
    return LoadedModel(quantize(lm, model.quantization), outcome)


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
