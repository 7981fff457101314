"""The trained tiny model, perplexity, quantization and the refusal of impossible knobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_energy.config import ConfigError, ModelConfig, QualityConfig, RunConfig, validate
from mlflow_energy.inference import generation
from mlflow_energy.inference.hardware_support import check_hardware_support
from mlflow_energy.inference.inputs import validate_inputs
from mlflow_energy.inference.models import load_model, load_tokenizer, resolve_model
from mlflow_energy.inference.prompts import Batch
from mlflow_energy.inference.quality import heldout_text, perplexity
from mlflow_energy.inference.quantization import int8_linear_count

QUALITY = QualityConfig(max_tokens=2048)


def load(**fields) -> tuple:
    config = ModelConfig(**fields)
    source = resolve_model(config)
    return load_model(source, config, "cpu").model, load_tokenizer(source, config)


def score(model, tokenizer) -> float:
    return perplexity(model, tokenizer, heldout_text("shipped"), QUALITY, "cpu").perplexity


def test_trained_model_beats_its_random_twin_by_five_times() -> None:
    trained, tokenizer = load(name="tiny-stories", weights="pretrained")
    random_twin, _ = load(name="tiny-stories", weights="random")
    trained_ppl, random_ppl = score(trained, tokenizer), score(random_twin, tokenizer)
    assert trained_ppl <= random_ppl / 5, (trained_ppl, random_ppl)
    assert trained_ppl < 10


def test_greedy_generation_is_deterministic_and_readable() -> None:
    model, tokenizer = load(name="tiny-stories", weights="pretrained")
    prompt = tokenizer(["Once upon a time, there was a"], return_tensors="pt")
    batch = Batch(prompt["input_ids"], prompt["attention_mask"])
    config = generation.fixed_length_config(model, tokenizer, 24)
    first = tokenizer.decode(generation.generate(model, batch, config)[0])
    second = tokenizer.decode(generation.generate(model, batch, config)[0])
    assert first == second
    words = first.split()
    assert len(words) >= 8 and sum(w.strip('.,"!?').isalpha() for w in words) >= 0.8 * len(words), first


def test_dynamic_int8_really_stores_int8_weights() -> None:
    plain, _ = load(name="tiny-stories")
    quantized, tokenizer = load(name="tiny-stories", quantization="dynamic_int8")
    assert int8_linear_count(plain) == 0
    # 4 layers x (4 attention + 3 MLP projections): every nn.Linear inside the blocks.
    assert int8_linear_count(quantized) >= 28
    # Quality survives int8 within a few percent.
    assert score(quantized, tokenizer) == pytest.approx(score(plain, tokenizer), rel=0.1)


def test_static_cache_generates_the_same_tokens() -> None:
    model, tokenizer = load(name="tiny-stories")
    prompt = tokenizer(["The dog said,"], return_tensors="pt")
    batch = Batch(prompt["input_ids"], prompt["attention_mask"])
    dynamic = generation.generate(model, batch, generation.fixed_length_config(model, tokenizer, 12, "dynamic"))
    static = generation.generate(model, batch, generation.fixed_length_config(model, tokenizer, 12, "static"))
    assert dynamic.tolist() == static.tolist()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"quantization": "dynamic_int8", "dtype": "bfloat16"},
            "model.quantization=dynamic_int8 quantizes float32 layers",
        ),
        ({"quantization": "int8_weight_only"}, "model.quantization=int8_weight_only needs a GPU"),
        ({"quantization": "int4"}, "model.quantization='int4' is not one of"),
    ],
)
def test_impossible_combinations_are_refused(model: dict, message: str) -> None:
    config = RunConfig()
    for key, value in model.items():
        setattr(config.model, key, value)
    with pytest.raises(ConfigError, match=message):
        validate(config)
        check_hardware_support(config)


def test_quality_dataset_must_exist(tmp_path: Path) -> None:
    config = RunConfig()
    config.quality.dataset = str(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="quality.dataset="):
        validate_inputs(config)
    config.quality.enabled = False
    validate_inputs(config)  # not evaluated, not checked


def test_static_compile_gives_the_same_greedy_tokens_as_eager() -> None:
    model, tokenizer = load(name="tiny-stories")
    prompt = tokenizer(["Once upon a time,", "One windy day, Sam"], return_tensors="pt", padding=True)
    batch = Batch(prompt["input_ids"], prompt["attention_mask"])
    eager = generation.generate(model, batch, generation.fixed_length_config(model, tokenizer, 8))
    compiled_config = generation.fixed_length_config(model, tokenizer, 8, compiled=True)
    assert compiled_config.cache_implementation == "static" and compiled_config.compile_config is not None
    compiled = generation.generate(model, batch, compiled_config)
    assert compiled.tolist() == eager.tolist()
