"""Pruning knobs on the shipped tiny-stories model: what each kind reaches, that greedy text
still comes out, and what is refused before any work."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from mlflow_energy.commands.checks import check_run
from mlflow_energy.config import ConfigError, ModelConfig, PruningConfig, RunConfig, config_hash, point_hash
from mlflow_energy.inference.models import LoadedModel, load_model, load_tokenizer, parameter_count, resolve_model
from mlflow_energy.inference.pruning import decoder_layers, keep_two_of_four, layers_to_drop, refusal

# The hashes of the default configuration: pruning keys leave an unpruned run's hash as it was, so
# sweeps measured earlier still resume. (bench.processes and bench.estimate_processes changed them: a new
# protocol is re-measured.)
DEFAULT_CONFIG_HASH, DEFAULT_POINT_HASH = "20d06239196b", "a3e2654a7388"


def loaded(**pruning: Any) -> tuple[LoadedModel, Any]:
    model = ModelConfig(pruning=PruningConfig(**pruning))
    source = resolve_model(model)
    return load_model(source, model, "cpu"), load_tokenizer(source, model)


def greedy_text(lm: Any, tokenizer: Any, new_tokens: int = 12) -> str:
    prompt = tokenizer(["Once upon a time", "The dog"], return_tensors="pt", padding=True,
                       return_token_type_ids=False)  # generate refuses them
    with torch.no_grad():
        out = lm.generate(**prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                          pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    assert out.shape == (2, prompt["input_ids"].shape[1] + new_tokens)
    return tokenizer.decode(out[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)


def zero_fraction(weight: torch.Tensor) -> float:
    return float((weight == 0).sum() / weight.numel())


def test_magnitude_pruning_reaches_the_asked_sparsity_in_every_decoder_projection() -> None:
    (dense, _), (pruned, tokenizer) = loaded(), loaded(method="magnitude", sparsity=0.5)
    outcome = pruned.pruning
    assert outcome is not None and outcome.sparsity_reached == pytest.approx(0.5, abs=1e-4)
    linears = [m for m in decoder_layers(pruned.model).modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4 * 7  # q, k, v, o, gate, up, down in each of 4 layers
    for linear in linears:
        assert zero_fraction(linear.weight) == pytest.approx(0.5, abs=1e-3)
        assert not hasattr(linear, "weight_orig") and not linear._forward_pre_hooks  # made permanent
    # The smallest weights went: every one kept is at least as large as every one zeroed.
    before = dense.model.model.layers[0].mlp.up_proj.weight.abs()
    kept = pruned.model.model.layers[0].mlp.up_proj.weight != 0
    assert before[~kept].max() <= before[kept].min()
    assert zero_fraction(pruned.model.get_input_embeddings().weight) == 0  # embeddings and head stay dense
    assert outcome.pruned_weights == sum(m.weight.numel() for m in linears)
    assert outcome.nonzero_parameters == parameter_count(pruned.model) - outcome.pruned_weights // 2
    assert outcome.decoder_layers == 4 and outcome.layers_removed == []
    assert greedy_text(pruned.model, tokenizer).strip()


@pytest.mark.parametrize(("drop_layers", "removed"), [(2, [1, 2]), ([0], [0])])
def test_dropping_layers_leaves_a_smaller_model_that_still_generates(drop_layers: Any, removed: list[int]) -> None:
    (dense, _), (pruned, tokenizer) = loaded(), loaded(drop_layers=drop_layers)
    outcome = pruned.pruning
    assert outcome is not None and outcome.layers_removed == removed
    assert outcome.decoder_layers == pruned.model.config.num_hidden_layers == 4 - len(removed)
    layers = decoder_layers(pruned.model)
    assert [layer.self_attn.layer_idx for layer in layers] == list(range(len(layers)))  # KV cache slots renumbered
    per_layer = parameter_count(dense.model.model.layers[0])
    assert parameter_count(pruned.model) == parameter_count(dense.model) - len(removed) * per_layer
    assert outcome.nonzero_parameters == parameter_count(pruned.model) and outcome.sparsity_reached == 0
    # The layers left are the dense model's own: same weights, in order.
    kept = [i for i in range(4) if i not in removed]
    for index, layer in zip(kept, layers, strict=True):
        assert torch.equal(layer.mlp.down_proj.weight, dense.model.model.layers[index].mlp.down_proj.weight)
    assert greedy_text(pruned.model, tokenizer).strip()


def testkeep_two_of_four_keeps_the_two_largest_of_every_four_weights() -> None:
    linear = torch.nn.Linear(8, 3, bias=False)
    with torch.no_grad():
        keep_two_of_four(linear)
        groups = linear.weight.reshape(-1, 4)
    assert ((groups != 0).sum(dim=1) == 2).all()
    original = torch.nn.Linear(8, 3, bias=False)
    original.load_state_dict({"weight": torch.randn(3, 8, generator=torch.Generator().manual_seed(1))})
    reference = original.weight.detach().clone().reshape(-1, 4)
    with torch.no_grad():
        keep_two_of_four(original)
    kept = original.weight.reshape(-1, 4) != 0
    for row, mask in zip(reference.abs(), kept, strict=True):
        assert set(row.argsort(descending=True)[:2].tolist()) == set(mask.nonzero().flatten().tolist())


@pytest.mark.parametrize(("drop_layers", "fragment"), [
    (4, "must be from 0 to 3"),
    ([0, 1, 2, 3], "removes every decoder layer"),
    ([5], "indices from 0 to 3"),
    ("2", "neither a count nor a list"),
])  # fmt: skip
def test_layers_to_drop_refuses_what_cannot_be_removed(drop_layers: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        layers_to_drop(drop_layers, 4)


@pytest.mark.parametrize(("arguments", "fragment"), [
    (("semi_structured", 0.5, "bfloat16", "cpu", None), "GPUs with sparse tensor cores only"),
    (("semi_structured", 0.5, "bfloat16", "cuda:0", (7, 5)), "this GPU has 7.5"),
    (("semi_structured", 0.5, "float32", "cuda:0", (9, 0)), "set model.dtype=bfloat16"),
    (("semi_structured", 0.3, "bfloat16", "cuda:0", (9, 0)), "a sparsity of 0.5"),
    (("magnitude", 1.0, "float32", "cpu", None), "above 0 and below 1"),
])  # fmt: skip
def test_what_the_machine_cannot_run_is_refused_in_one_sentence(arguments: tuple, fragment: str) -> None:
    reason = refusal(*arguments)
    assert reason is not None and fragment in reason and reason.endswith(".")


def test_an_h100_in_bfloat16_can_runkeep_two_of_four() -> None:
    assert refusal("semi_structured", 0.5, "bfloat16", "cuda:0", (9, 0)) is None


def pruned_config(**pruning: Any) -> RunConfig:
    config = RunConfig(device="cpu")
    config.model.pruning = PruningConfig(**pruning)
    return config


@pytest.mark.parametrize(("pruning", "fragment"), [
    ({"method": "semi_structured"}, "GPUs with sparse tensor cores only"),
    ({"method": "lottery"}, "model.pruning.method='lottery' is not one of"),
    ({"drop_layers": 4}, "model.name='tiny-stories': model.pruning.drop_layers=4 must be from 0 to 3"),
    ({"drop_layers": -1}, "must be a count (0 or more) or a list"),
])  # fmt: skip
def test_a_run_is_refused_before_any_work(pruning: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_run(pruned_config(**pruning))
    assert fragment in str(error.value)


def test_serving_refuses_pruning_it_cannot_apply() -> None:
    config = pruned_config(method="magnitude")
    config.scenario = "serving"
    with pytest.raises(ConfigError, match="transformers serve loads the model itself"):
        check_run(config)


def test_pruning_keys_change_the_hash_only_when_pruning_is_on() -> None:
    assert (config_hash(RunConfig()), point_hash(RunConfig())) == (DEFAULT_CONFIG_HASH, DEFAULT_POINT_HASH)
    assert config_hash(pruned_config(sparsity=0.7)) == config_hash(RunConfig(device="cpu"))  # method none: unused
    hashes = {config_hash(pruned_config(**p)) for p in ({}, {"method": "magnitude"}, {"method": "magnitude",
              "sparsity": 0.7}, {"drop_layers": 2}, {"drop_layers": [1, 2]})}  # fmt: skip
    assert len(hashes) == 5
