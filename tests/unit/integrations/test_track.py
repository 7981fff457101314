"""mlflow_energy.track() around a user's own code: metrics, tags and the timeline land on the
user's run with the CLI's names; named windows; the decorator; an exception in the block reaches
the caller untouched with what was measured logged; a meter that cannot start never stops the code."""

from __future__ import annotations

import time
import warnings
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient

import mlflow_energy
from mlflow_energy.meter import gpu as gpu_module
from mlflow_energy.meter.gpu import NvmlGpus
from mlflow_energy.store import names

from fake_nvml import ClockedCounter, FakeGpu, FakeNvml


@pytest.fixture
def store(tracking_uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(tracking_uri)
    yield MlflowClient(tracking_uri)
    while mlflow.active_run():
        mlflow.end_run()


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def test_a_block_in_the_users_run_logs_the_clis_figures(store: MlflowClient) -> None:
    generated = 0
    with mlflow.start_run() as run:
        with mlflow_energy.track(tokens=lambda: generated, requests=4) as t:
            for _ in range(2):
                with t.window("prefill"):
                    busy(0.1)
            with t.window("decode"):
                busy(0.3)
                generated = 640
        assert mlflow.active_run().info.run_id == run.info.run_id  # the user's run stays open
    logged = store.get_run(run.info.run_id)
    m, tags = logged.data.metrics, logged.data.tags
    assert m[names.ENERGY_PER_TOKEN] == pytest.approx(m["energy/total_j"] / 640)
    assert m["energy/j_per_request"] == pytest.approx(m["energy/total_j"] / 4)
    assert m["measurement/generated_tokens"] == 640 and m["measurement/requests"] == 4
    assert m[names.THROUGHPUT] == pytest.approx(640 / m["measurement/duration_s"])
    assert m["window/prefill/duration_s"] >= 0.2 and m["window/decode/duration_s"] >= 0.3  # summed per name
    assert m["window/prefill/count"] == 2 and m["window/decode/count"] == 1
    assert m["measurement/duration_s"] >= m["window/prefill/duration_s"] + m["window/decode/duration_s"]
    # No GPU here: CodeCarbon's estimates are the headline, and say so; windows have no CPU figure.
    assert tags[names.TAG_HEADLINE].startswith("ESTIMATE (cpu:estimate")
    assert tags[names.TAG_SOURCE_PREFIX + "cpu"].startswith("estimate") and "window/decode/energy_j" not in m
    assert m["emissions/g_co2e"] > 0
    artifacts = {a.path for a in store.list_artifacts(run.info.run_id)}
    assert {"power_timeline.csv", "power_timeline.png"} <= artifacts
    assert t.result is not None and [w.name for w in t.result.windows] == ["prefill", "prefill", "decode"]


def test_the_decorator_opens_and_closes_a_run_of_its_own(store: MlflowClient) -> None:
    @mlflow_energy.track(tokens=100)
    def work() -> str:
        busy(0.1)
        return "done"

    assert work() == "done" and work() == "done"  # each call is a block of its own
    assert mlflow.active_run() is None
    runs = store.search_runs([store.get_experiment_by_name("Default").experiment_id])
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == names.RUN_FINISHED and run.data.metrics["measurement/generated_tokens"] == 100
        assert run.data.metrics[names.ENERGY_PER_TOKEN] == pytest.approx(run.data.metrics["energy/total_j"] / 100)


def test_an_exception_reaches_the_caller_and_the_partial_measurement_is_logged(store: MlflowClient) -> None:
    with pytest.raises(ZeroDivisionError):
        with mlflow_energy.track() as t:
            t.add_tokens(10)
            busy(0.1)
            1 / 0  # noqa: B018
    (run,) = store.search_runs([store.get_experiment_by_name("Default").experiment_id])
    assert run.info.status == names.RUN_FAILED
    assert run.data.metrics["measurement/duration_s"] >= 0.1 and run.data.metrics["energy/total_j"] > 0


def test_a_meter_that_cannot_start_warns_once_and_the_code_runs(store: MlflowClient,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("no CodeCarbon here")

    monkeypatch.setattr("mlflow_energy.meter.host.HostEnergy", broken)
    ran = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with mlflow_energy.track(tokens=5) as t:
            with t.window("part"):
                ran.append(True)
    assert ran == [True] and t.result is None
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == [
        "mlflow-energy: the energy meter could not start (OSError: no CodeCarbon here); "
        "the code runs unmeasured from here"
    ]
    assert mlflow.active_run() is None and store.search_runs(["0"]) == []  # nothing half logged


def test_gpu_energy_is_measured_per_window_and_is_the_headline(store: MlflowClient,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    fake = FakeNvml([FakeGpu("GPU-aaaa1111", counter=ClockedCounter(power_w=200.0, period_s=0.01))])
    monkeypatch.setattr(gpu_module, "NvmlGpus", lambda **kwargs: NvmlGpus(nvml=fake, cuda_visible_devices="0"))
    with mlflow.start_run() as run:
        with mlflow_energy.track(tokens=1000, sample_period_s=0.01) as t:
            with t.window("decode"):
                busy(0.25)
                with t.window("inner"):  # windows nest
                    busy(0.25)
    m, tags = store.get_run(run.info.run_id).data.metrics, store.get_run(run.info.run_id).data.tags
    assert tags[names.TAG_HEADLINE] == "measured (gpu:nvml_counter)"
    assert m["energy/total_j"] == pytest.approx(m["energy/gpu_j"])  # the estimates stay out of the headline
    assert m["energy/with_estimates_total_j"] > m["energy/gpu_j"]
    # 200 W: about 200 J per second of window, within a few of the counter's 10 ms (2 J) steps
    assert m["window/decode/gpu_j"] == pytest.approx(200 * m["window/decode/duration_s"], abs=200 * 0.03)
    assert m["window/decode/energy_j"] == m["window/decode/gpu_j"]
    assert m["window/inner/gpu_j"] < m["window/decode/gpu_j"] and m["window/inner/duration_s"] >= 0.25
    assert m["power/gpu_mean_w"] == pytest.approx(200, rel=0.15)
    # The timeline, as a CLI run logs it: MLflow system metrics against wall-clock time, phases coded.
    power = store.get_metric_history(run.info.run_id, "system/gpu_0_power_usage_watts")
    assert len(power) >= 10 and all(p.value == pytest.approx(100.0) for p in power)  # the fake's power reading
    by_step = sorted(power, key=lambda p: p.step)
    assert [p.step for p in by_step] == list(range(len(power)))
    assert all(a.timestamp <= b.timestamp for a, b in zip(by_step, by_step[1:], strict=False))
    assert tags[names.TAG_PHASES] == "1 decode, 2 inner"
    phases = {p.value for p in store.get_metric_history(run.info.run_id, names.SYSTEM_PHASE)}
    assert {1.0, 2.0} <= phases


def test_it_works_with_autologging_on(store: MlflowClient) -> None:
    mlflow.autolog(silent=True)
    try:
        with mlflow.start_run() as run:
            with mlflow_energy.track(tokens=50):
                busy(0.1)
    finally:
        mlflow.autolog(disable=True, silent=True)
    metrics = store.get_run(run.info.run_id).data.metrics
    assert metrics[names.ENERGY_PER_TOKEN] == pytest.approx(metrics["energy/total_j"] / 50)
