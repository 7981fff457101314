"""Contracts with other libraries: what the adapters (mlflow_energy/adapters/) and the MLflow
names rely on. Each test fails loudly, naming the library, when a release changes it; CI runs
them against the oldest and the newest versions pyproject.toml claims."""

from __future__ import annotations

import inspect
import os

import pytest

from mlflow_energy.adapters import codecarbon as codecarbon_adapter
from mlflow_energy.adapters.hydra import split_grid
from mlflow_energy.adapters.transformers import compile_on_any_device, names_config_class
from mlflow_energy.meter.host import HostEnergy
from mlflow_energy.store import names


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> HostEnergy:
    meter = HostEnergy("USA", None, tmp_path_factory.mktemp("codecarbon"))
    yield meter
    meter.close()


def test_codecarbon_reports_how_it_measures_the_cpu(host: HostEnergy) -> None:
    mode = codecarbon_adapter.cpu_tracking_mode(host._tracker)
    assert isinstance(mode, str) and mode, "codecarbon: tracker._hardware no longer holds a CPU with a _mode"
    assert host.cpu_source in ("rapl", f"estimate:{mode}")


def test_codecarbon_has_the_monitor_the_overhead_benchmark_clocks(host: HostEnergy) -> None:
    monitor = host.power_monitor()
    assert monitor is not None and callable(monitor.function), "codecarbon: _scheduler_monitor_power changed"


def test_codecarbon_task_api_gives_cpu_and_ram_joules(host: HostEnergy) -> None:
    host.start("contract")
    cpu_j, ram_j = host.stop("contract")
    assert cpu_j >= 0 and ram_j >= 0


def test_codecarbon_offline_grid_data() -> None:
    from codecarbon.input import DataSource

    # Read from CodeCarbon's data file: the countries its own reader gives.
    assert codecarbon_adapter.known_countries() == frozenset(DataSource().get_global_energy_mix_data())
    assert {"USA", "FRA", "DEU"} <= codecarbon_adapter.known_countries()
    intensity = codecarbon_adapter.grid_intensity_g_per_kwh("FRA")
    assert 1 < intensity < codecarbon_adapter.grid_intensity_g_per_kwh("USA") < 2000  # France's grid is low-carbon


@pytest.mark.skipif(not os.path.isfile("/proc/cpuinfo"), reason="reads Linux's /proc/cpuinfo")
def test_codecarbon_names_the_cpu_as_py_cpuinfo_does_without_starting_it() -> None:
    import cpuinfo
    from codecarbon.core.util import detect_cpu_model

    with codecarbon_adapter.cpu_name_from_proc_cpuinfo():
        shortcut = detect_cpu_model.__wrapped__()  # CodeCarbon's call, past its cache
        assert cpuinfo.get_cpu_info() == {"brand_raw": shortcut}  # answered without a second Python
    assert shortcut == cpuinfo.get_cpu_info()["brand_raw"], "py-cpuinfo names this CPU otherwise"


@pytest.mark.parametrize(("text", "name"), [
    ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7R13\n",
     "AMD EPYC 7R13"),
    ("Processor\t: AArch64 Processor rev 4 (aarch64)\nprocessor\t: 0\nmodel name\t: ARMv8\n",
     "AArch64 Processor rev 4 (aarch64)"),  # the first brand field, as py-cpuinfo takes it
    ("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n", None),  # no name: py-cpuinfo is asked
])  # fmt: skip
def test_the_cpu_name_is_read_from_proc_cpuinfo_as_py_cpuinfo_reads_it(text: str, name: str | None) -> None:
    assert codecarbon_adapter.cpu_brand(text) == name


def test_hydra_grid_expansion_matches_the_basic_sweeper() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides(["a=1,2", "b=x,y", "c=3"])
    assert split_grid(overrides) == [
        ["a=1", "b=x", "c=3"], ["a=1", "b=y", "c=3"], ["a=2", "b=x", "c=3"], ["a=2", "b=y", "c=3"],
    ]  # fmt: skip


def test_transformers_generate_reads_the_compile_switch() -> None:
    import transformers.generation.utils
    from transformers import CompileConfig

    config = CompileConfig()
    compile_on_any_device(config)
    assert config._compile_all_devices is True, "transformers: CompileConfig._compile_all_devices is gone"
    assert "_compile_all_devices" in inspect.getsource(transformers.generation.utils), (
        "transformers: generate no longer reads CompileConfig._compile_all_devices"
    )


def test_every_model_type_transformers_knows_is_read_from_its_source() -> None:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    unread = [t for t in CONFIG_MAPPING.keys() if not names_config_class(t)]
    assert not unread, f"transformers: these model types are not listed beside a config class: {unread[:5]}"
    # A folder of transformers' models that is no model type of its own, and a type it never had.
    for other in ("auto", "kosmos2", "no-such-model", "llama'"):
        assert other not in CONFIG_MAPPING and not names_config_class(other), other


def test_mlflow_run_statuses_are_spelled_as_mlflow_does() -> None:
    from mlflow.entities import RunStatus

    for ours, theirs in [(names.RUN_FINISHED, RunStatus.FINISHED), (names.RUN_FAILED, RunStatus.FAILED),
                         (names.RUN_KILLED, RunStatus.KILLED), (names.RUN_RUNNING, RunStatus.RUNNING)]:  # fmt: skip
        assert RunStatus.to_string(theirs) == ours


def test_mlflow_pyfunc_log_model_takes_a_name() -> None:
    """registry.register logs the model with ``name=`` (MLflow 3; MLflow 2 called it artifact_path)."""
    import mlflow.pyfunc

    assert "name" in inspect.signature(mlflow.pyfunc.log_model).parameters
