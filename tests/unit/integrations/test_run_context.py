"""The hardware run context provider: found by MLflow through its entry point, tags from a fake
NVML, and never a failed run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# mlflow before the provider's module: importing mlflow loads that module through its entry point,
# and finding it half-imported, MLflow would warn and leave the provider out of this process.
import mlflow  # noqa: F401
import pytest

from mlflow_energy.integrations import run_context
from mlflow_energy.integrations.run_context import HardwareContextProvider, collect_tags, cpu_model
from mlflow_energy.store import names

from fake_nvml import FakeGpu, FakeNvml
from processes import cli_env

HARDWARE_TAGS = {names.TAG_GPU_MODEL, names.TAG_GPU_COUNT, names.TAG_GPU_DRIVER, names.TAG_GPU_POWER_LIMIT,
                 names.TAG_CPU_MODEL}  # fmt: skip

# A fresh interpreter: MLflow registers the provider from the package's entry point at `import mlflow`.
# The first run starts with the provider off (from the environment), the second with it on.
SCRIPT = """
import json, os
import mlflow

def tags():
    with mlflow.start_run() as run:
        pass
    return mlflow.get_run(run.info.run_id).data.tags

off = tags()
del os.environ["MLFLOW_ENERGY_RUN_CONTEXT"]
on = tags()
print(json.dumps({"off": off, "on": on}))
"""


class LimitedNvml(FakeNvml):
    """The fake with a power limit, in milliwatts as NVML reports it."""

    def __init__(self, gpus: list[FakeGpu], limit_mw: int = 700_000) -> None:
        super().__init__(gpus)
        self.limit_mw = limit_mw

    def nvmlDeviceGetPowerManagementLimit(self, gpu: FakeGpu) -> int:
        return self.limit_mw


class BrokenNvml(FakeNvml):
    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        raise RuntimeError("the driver went away")


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads the hardware anew, with every GPU visible."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(run_context.ENV_SWITCH, raising=False)
    run_context._cached_tags.cache_clear()
    yield
    run_context._cached_tags.cache_clear()


def test_mlflow_finds_the_provider_through_its_entry_point(tracking_uri: str, tmp_path: Path) -> None:
    env = cli_env({"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_ENERGY_RUN_CONTEXT": "0", "CUDA_VISIBLE_DEVICES": ""})
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout.splitlines()[-1])
    assert not HARDWARE_TAGS & runs["off"].keys()
    # CUDA_VISIBLE_DEVICES="" hides every GPU, as on CI: a count of 0 and no model.
    assert runs["on"][names.TAG_GPU_COUNT] == "0"
    assert runs["on"][names.TAG_CPU_MODEL] == cpu_model()
    assert not {names.TAG_GPU_MODEL, names.TAG_GPU_DRIVER, names.TAG_GPU_POWER_LIMIT} & runs["on"].keys()
    assert "mlflow-energy could not" not in done.stderr


def test_tags_of_the_visible_gpus() -> None:
    gpus = [FakeGpu("GPU-a", name="H100"), FakeGpu("GPU-b", name="H100"), FakeGpu("GPU-c", name="A100")]
    tags = collect_tags(LimitedNvml(gpus, limit_mw=350_500))
    assert tags[names.TAG_GPU_COUNT] == "3"
    assert tags[names.TAG_GPU_MODEL] == "A100, H100"  # each model once, sorted, as the logger writes it
    assert tags[names.TAG_GPU_DRIVER] == "999.99"
    assert tags[names.TAG_GPU_POWER_LIMIT] == "350.5"
    assert tags[names.TAG_CPU_MODEL] == cpu_model()


def test_only_the_gpus_cuda_shows_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    tags = collect_tags(LimitedNvml([FakeGpu("GPU-a"), FakeGpu("GPU-b")]))
    assert (tags[names.TAG_GPU_COUNT], tags[names.TAG_GPU_POWER_LIMIT]) == ("1", "700")


def test_no_power_limit_tag_where_nvml_has_none() -> None:
    tags = collect_tags(FakeNvml([FakeGpu("GPU-a")]))  # the plain fake: limit not supported
    assert tags[names.TAG_GPU_COUNT] == "1" and names.TAG_GPU_POWER_LIMIT not in tags


def test_an_error_inside_gives_no_tags_and_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    # The provider imports pynvml itself; this one fails halfway through reading the GPUs.
    monkeypatch.setitem(sys.modules, "pynvml", BrokenNvml([FakeGpu("GPU-a")]))
    provider = HardwareContextProvider()
    with caplog.at_level(logging.WARNING, logger=run_context.__name__):
        assert provider.in_context()
        assert provider.tags() == {} and provider.tags() == {}  # a second run: cached, no second warning
    warned = [r.getMessage() for r in caplog.records if r.name == run_context.__name__]
    assert len(warned) == 1 and "the driver went away" in warned[0]


def test_the_provider_caches_the_tags_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = LimitedNvml([FakeGpu("GPU-a")])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    first = HardwareContextProvider().tags()
    nvml.gpus.append(FakeGpu("GPU-b"))  # read once: a later run sees the first reading
    second = HardwareContextProvider().tags()
    assert first == second and first[names.TAG_GPU_COUNT] == "1"
    second[names.TAG_GPU_COUNT] = "changed"  # each run gets a copy
    assert HardwareContextProvider().tags()[names.TAG_GPU_COUNT] == "1"


@pytest.mark.parametrize(("value", "on"), [("0", False), ("false", False), ("OFF", False), ("1", True), ("", True)])
def test_the_environment_switch(monkeypatch: pytest.MonkeyPatch, value: str, on: bool) -> None:
    monkeypatch.setenv(run_context.ENV_SWITCH, value)
    assert HardwareContextProvider().in_context() is on


def test_cpu_model_from_proc_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n")
    assert cpu_model(cpuinfo) == "Intel(R) Xeon(R) Platinum 8480+"


def test_cpu_model_without_proc_cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_context.platform, "processor", lambda: "arm")
    assert cpu_model(tmp_path / "absent") == "arm"
    monkeypatch.setattr(run_context.platform, "processor", lambda: "")
    assert cpu_model(tmp_path / "absent") is None
