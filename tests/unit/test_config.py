"""Configuration validation: each user mistake gives one sentence naming the key and the fix."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_energy.commands.checks import check_run
from mlflow_energy.config import ConfigError, RunConfig, as_dict, config_dir, config_hash, flatten, validate
from mlflow_energy.inference.models import resolve_model, shipped_models

from processes import REPO


def config(**overrides: object) -> RunConfig:
    c = RunConfig()
    for dotted, value in overrides.items():
        section, key = dotted.split("__") if "__" in dotted else (None, dotted)
        setattr(getattr(c, section) if section else c, key, value)
    return c


def test_defaults_are_valid() -> None:
    validate(RunConfig())


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"workload__batch_size": 0}, "workload.batch_size=0 must be at least 1"),
        ({"workload__new_tokens": -3}, "workload.new_tokens=-3 must be at least 1"),
        ({"workload__prompt_tokens": 0}, "workload.prompt_tokens=0"),
        ({"model__dtype": "float8"}, "model.dtype='float8' is not one of float32, float16, bfloat16"),
        ({"model__weights": "trained"}, "model.weights='trained'"),
        ({"device": "tpu"}, "device='tpu' is not auto, cpu, cuda or cuda:N"),
        ({"device": "cuda"}, "asks for a GPU but none is visible here"),
        ({"device": "cuda:1"}, "asks for a GPU but none is visible here"),
        ({"bench__warmup_runs": 0}, "bench.warmup_runs=0 must be at least 1"),
        ({"bench__min_window_s": 0.0}, "bench.min_window_s=0.0 must be positive"),
        ({"bench__target_ci": 2.0}, "bench.target_ci=2.0 must be a fraction between 0 and 1"),
        ({"bench__max_duration_s": 1.0}, "bench.max_duration_s=1.0 is below bench.min_duration_s=5.0"),
        ({"bench__cooldown_max_s": -1.0}, "bench.cooldown_max_s=-1.0 must be 0 or more seconds"),
        ({"sweep__replicates": 0}, "sweep.replicates=0 must be at least 1"),
        ({"carbon__country_iso_code": "XYZ"}, "carbon.country_iso_code='XYZ'"),
        ({"carbon__pue": 0.5}, "carbon.pue=0.5 must be at least 1.0"),
        ({"backend__name": "tensorrt"}, "backend.name='tensorrt'"),
        ({"workload__prompts": "/no/such/file.jsonl"}, "workload.prompts='/no/such/file.jsonl'"),
        ({"scenario": "stream"}, "scenario='stream' is not one of batch, serving"),
        ({"serving__concurrency": 0}, "serving.concurrency=0 must be at least 1"),
        ({"serving__request_rate": -1.0}, "serving.request_rate=-1.0 must be positive"),
        ({"serving__max_error_share": 1.0}, "serving.max_error_share=1.0 must be a fraction"),
        ({"serving__url": "127.0.0.1:8000"}, "serving.url='127.0.0.1:8000' is not an http(s) URL"),
        ({"scenario": "serving", "serving__output_length": "fixed"}, "transformers serve refuses them"),
        ({"scenario": "serving", "backend__name": "static_compile"}, "backend.name=static_compile applies to"),
        ({"scenario": "serving", "model__device_map": "auto"}, "drop model.device_map for scenario=serving"),
        ({"serving__url": "http://127.0.0.1:9/v1", "serving__server_args": ["--cb-num-blocks", "8"]},
         "serving.server_args are for the server the tool starts"),
        ({"serving__server_args": ["--port=9000"]}, "serving.server_args sets --port=9000, which the tool sets"),
        ({"scenario": "serving", "serving__url": "http://127.0.0.1:9/v1"}, "nothing answers at serving.url"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(overrides: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_run(config(**overrides))
    assert fragment in str(error.value)
    assert str(error.value).count("\n") == 0


def test_unknown_model_is_refused_quickly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a shipped model"):
        resolve_model(config(model__name="no-such-org/no-such-model").model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="folder without a config.json"):
        resolve_model(config(model__name=str(tmp_path / "empty")).model)


def test_shipped_config_without_weights_needs_random() -> None:
    assert {"tiny", "tiny-stories", "llama-3.2-1b", "llama-3.1-8b", "qwen2.5-0.5b", "gpt2"} <= set(shipped_models())
    with pytest.raises(ConfigError, match="use model.weights=random"):
        resolve_model(config(model__name="llama-3.2-1b", model__weights="pretrained").model)


def test_the_shipped_configs_are_read_without_transformers_as_transformers_reads_them() -> None:
    """A shipped model's checks skip the custom-code check and read its sizes from config.json
    directly (no transformers import, seconds on a fresh machine): every shipped architecture is
    one transformers knows, and the sizes read are the ones its config class gives."""
    from transformers import AutoConfig

    from mlflow_energy.inference import models
    from mlflow_energy.inference.models import SHIPPED_DIR

    for name in shipped_models():
        source = resolve_model(config(model__name=name, model__weights="random").model)
        loaded = AutoConfig.from_pretrained(SHIPPED_DIR / name)
        assert loaded.model_type in models._known_model_types(), name
        assert (source.max_positions, source.decoder_layers) == (loaded.max_position_embeddings,
                                                                 loaded.num_hidden_layers), name  # fmt: skip


def test_a_hub_model_in_the_local_cache_is_checked_from_its_config_without_transformers(tmp_path: Path) -> None:
    """The layout the hub's downloads leave (models--org--name/refs/main, snapshots/<commit>/),
    read in a fresh process as the command reads it: sizes from config.json, torch not imported;
    a model_type transformers does not know is refused there."""
    from mlflow_energy.inference.models import SHIPPED_DIR

    def cache_model(repo: str, model_config: dict) -> None:
        folder = tmp_path / f"models--{repo.replace('/', '--')}"
        commit = "0" * 40
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(commit)
        (folder / "snapshots" / commit).mkdir(parents=True)
        (folder / "snapshots" / commit / "config.json").write_text(json.dumps(model_config))

    llama = json.loads((SHIPPED_DIR / "llama-3.2-1b" / "config.json").read_text())
    cache_model("acme/llama", llama)
    cache_model("acme/odd", {**llama, "model_type": "no-such-architecture"})
    script = """
import sys
from mlflow_energy.config import ConfigError, ModelConfig
from mlflow_energy.inference.models import resolve_model
source = resolve_model(ModelConfig(name="acme/llama"))
print(source.kind, source.max_positions, source.decoder_layers, "torch" in sys.modules)
try:
    resolve_model(ModelConfig(name="acme/odd"))
except ConfigError as error:
    print(error)
"""
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found, refused = proc.stdout.splitlines()
    assert found == f"hub {llama['max_position_embeddings']} {llama['num_hidden_layers']} False"
    assert refused.startswith("model.name='acme/odd' has model_type='no-such-architecture' in its config.json, which")


def test_a_batch_run_keeps_its_config_hash_whatever_the_serving_keys_say() -> None:
    """A batch run does not use serving.*: its hash (what resumes a sweep) ignores them."""
    a, b = RunConfig(), RunConfig()
    b.serving.concurrency = 64
    assert config_hash(a) == config_hash(b)
    a.scenario = b.scenario = "serving"
    assert config_hash(a) != config_hash(b)


def test_config_hash_ignores_where_results_go() -> None:
    a, b = RunConfig(), RunConfig()
    b.tracking.uri, b.tracking.experiment = "sqlite:///elsewhere.db", "other"
    assert config_hash(a) == config_hash(b)
    b.workload.batch_size = 16
    assert config_hash(a) != config_hash(b)


def test_flatten_gives_dotted_param_names() -> None:
    flat = flatten(as_dict(RunConfig()))
    assert flat["model.name"] == "tiny-stories" and flat["workload.batch_size"] == 4 and flat["device"] == "auto"


def test_config_folder_found_from_the_checkout() -> None:
    assert (config_dir() / "config.yaml").is_file()
    for group in ("model", "workload", "backend", "bench", "quality", "carbon", "tracking", "precision", "compression",
                  "experiment"):
        assert any((config_dir() / group).glob("*.yaml")), group


def test_the_visible_gpus_come_from_nvml_without_torch_and_only_where_a_driver_is_there(monkeypatch,
                                                                                      tmp_path: Path) -> None:
    import mlflow_energy.inference.hardware_support as support

    def ask_nvml(answer):
        monkeypatch.setattr(support, "nvml_compute_capabilities", lambda visible: answer)
        support._visible_gpus.cache_clear()

    monkeypatch.setattr(support.sys, "platform", "linux")
    monkeypatch.setattr(support, "GPU_DRIVER_FILES", (str(tmp_path / "nvidiactl"),))
    monkeypatch.setattr(support, "nvml_compute_capabilities", lambda visible: pytest.fail("asked with no driver"))
    support._visible_gpus.cache_clear()
    assert support.resolve_device("auto") == "cpu"
    (tmp_path / "nvidiactl").touch()
    ask_nvml([(9, 0)])
    assert support._torch_built_for_gpus() is False  # this machine's torch is a CPU build: it sees no GPU
    assert support.resolve_device("auto") == "cpu"
    monkeypatch.setattr(support, "_torch_built_for_gpus", lambda: True)
    for answer, device in (([(9, 0)], "cuda:0"), ([], "cpu"), (None, "cpu")):  # None: no NVML, torch asked
        ask_nvml(answer)
        assert support.resolve_device("auto") == device
    ask_nvml([(9, 0), (8, 0)])
    support.check_device("cuda:1")
    with pytest.raises(support.ConfigError, match="asks for GPU 2 but only 2 visible"):
        support.check_device("cuda:2")
    support._visible_gpus.cache_clear()


def test_the_torch_build_is_read_from_its_version_file_without_importing_it(monkeypatch) -> None:
    import sys

    import torch

    import mlflow_energy.inference.hardware_support as support

    monkeypatch.delitem(sys.modules, "torch")
    assert support._torch_built_for_gpus() == bool(torch.version.cuda or torch.version.hip)
    assert "torch" not in sys.modules


def test_the_configuration_reference_is_the_schemas_field_docs() -> None:
    """docs/reference/config.md's table is generated from the schema: every key, the default a run
    gets and the field's docstring; `python scripts/config_reference.py` rewrites it."""
    import importlib.util

    script = REPO / "scripts" / "config_reference.py"
    spec = importlib.util.spec_from_file_location("config_reference", script)
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    page = reference.PAGE.read_text()
    assert reference.page_with_table(page) == page, "out of date: run python scripts/config_reference.py"
    listed = [key for keys, _, _ in reference.rows() for key in keys]
    assert sorted(listed) == sorted(flatten(as_dict(RunConfig())))
    assert "| `model.dtype` | `float32` | `float32`, `float16`, `bfloat16` |" in page
