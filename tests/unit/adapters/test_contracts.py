"""Contracts with other libraries: what the adapters (mlflow_energy/adapters/) and the MLflow
names rely on. Each test fails loudly, naming the library, when a release changes it; CI runs
them against the oldest and the newest versions pyproject.toml claims."""

from __future__ import annotations

import inspect

import pytest

from mlflow_energy.adapters import codecarbon as codecarbon_adapter
from mlflow_energy.adapters.hydra import split_grid
from mlflow_energy.adapters.transformers import compile_on_any_device
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


def test_mlflow_run_statuses_are_spelled_as_mlflow_does() -> None:
    from mlflow.entities import RunStatus

    for ours, theirs in [(names.RUN_FINISHED, RunStatus.FINISHED), (names.RUN_FAILED, RunStatus.FAILED),
                         (names.RUN_KILLED, RunStatus.KILLED), (names.RUN_RUNNING, RunStatus.RUNNING)]:  # fmt: skip
        assert RunStatus.to_string(theirs) == ours


def test_mlflow_pyfunc_log_model_takes_a_name() -> None:
    """registry.register logs the model with ``name=`` (MLflow 3; MLflow 2 called it artifact_path)."""
    import mlflow.pyfunc

    assert "name" in inspect.signature(mlflow.pyfunc.log_model).parameters
