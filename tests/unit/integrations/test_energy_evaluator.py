"""The ``energy`` model evaluator (integrations/energy_evaluator.py) end to end on the CPU: the shipped
tiny model registered as ``mlflow-energy register`` registers it (a measurement run selected and
its model logged as the text generating pyfunc), then ``mlflow.models.evaluate(model_uri, prompts,
evaluators=["energy"])``: the figures and energy sources land on the evaluation run, J/token is
the energy over the generated tokens, one request per row; a meter that breaks mid-way leaves a
warning, a trust tag and the rows it measured, never a failed evaluation; MLflow finds the
evaluator through the ``mlflow.model_evaluator`` entry point."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlflow_energy.integrations.energy_evaluator import Call, EnergyEvaluator, EnergyEvaluatorConfig, figures
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.registry.register import register, select
from mlflow_energy.store import names

MODEL, ALIAS, EXPERIMENT = "tiny-stories", "efficient", "mlflow-energy"
PROMPTS = ["Once upon a time, there was a", "The little dog", "Mia went to the park and", "One day, a bird"]


@pytest.fixture(scope="module")
def energy_evaluator() -> None:
    """MLflow's own discovery: the package's mlflow.model_evaluator entry point."""
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry as registry

    assert registry.is_registered("energy"), "pyproject.toml declares the entry point: reinstall (pip install -e .)"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, _empty_store: Path) -> Iterator[SimpleNamespace]:
    """A store where the tiny model is registered as ``register`` does it: a finished
    measurement run of tiny-stories selected, its model logged as the text generator pyfunc,
    the first version under @efficient."""
    folder = tmp_path_factory.mktemp("energy-evaluator")
    shutil.copyfile(_empty_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
    run_id = client.create_run(experiment, run_name="tiny-stories").info.run_id
    client.log_batch(run_id, metrics=[Metric(names.ENERGY_PER_TOKEN, 0.1, 0, 0), Metric(names.THROUGHPUT, 100.0, 0, 0)],
                     params=[Param(names.PARAM_MODEL_NAME, MODEL), Param(names.PARAM_MODEL_WEIGHTS, "pretrained")],
                     tags=[RunTag(names.TAG_STATUS, "finished"), RunTag(names.TAG_CPU_MODEL, "Test CPU")])  # fmt: skip
    client.set_terminated(run_id, names.RUN_FINISHED)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    register(uri, select(client, EXPERIMENT, None, names.ENERGY_PER_TOKEN, "min", []), MODEL, ALIAS)  # sets the URI
    yield SimpleNamespace(uri=uri, client=client, experiment=experiment)
    mlflow.set_tracking_uri(previous)  # None: unset again


def evaluate(store: SimpleNamespace, model: Any, **kwargs: Any) -> tuple[Any, Any]:
    """(EvaluationResult, the evaluation run as the store holds it)."""
    mlflow.set_tracking_uri(store.uri)
    with mlflow.start_run(experiment_id=store.experiment, run_name="evaluate") as run:
        result = mlflow.models.evaluate(model, pd.DataFrame({"prompt": PROMPTS}), model_type="text",
                                        evaluators=["energy"], **kwargs)  # fmt: skip
    return result, store.client.get_run(run.info.run_id)


@pytest.fixture(scope="module")
def evaluated(store: SimpleNamespace, energy_evaluator: None) -> tuple[Any, Any]:
    return evaluate(store, f"models:/{MODEL}@{ALIAS}")


def test_the_figures_and_sources_land_on_the_evaluation_run(store: SimpleNamespace, evaluated) -> None:
    result, run = evaluated
    metrics, tags = run.data.metrics, run.data.tags
    headline = [names.TOTAL_ENERGY, names.ENERGY_PER_REQUEST, names.WH_PER_1K_REQUESTS, names.ENERGY_PER_TOKEN,
                names.REQUEST_P50, names.REQUEST_P90]  # fmt: skip
    for key in headline:
        assert key in metrics and math.isfinite(metrics[key]) and metrics[key] > 0, key
        assert result.metrics[key] == pytest.approx(metrics[key])
    assert metrics[names.REQUESTS] == len(PROMPTS)  # one request per row, every window counted
    total = metrics[names.TOTAL_ENERGY]
    assert metrics[names.ENERGY_PER_REQUEST] == pytest.approx(total / len(PROMPTS))
    assert metrics[names.WH_PER_1K_REQUESTS] == pytest.approx(total / len(PROMPTS) * 1000 / 3600)
    assert metrics[names.REQUEST_P50] <= metrics[names.REQUEST_P90]

    # J/token: the energy over the tokens the model generated (greedy: the same texts again)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@{ALIAS}")
    tokenizer = model.unwrap_python_model().tokenizer
    texts = model.predict(pd.DataFrame({"prompt": PROMPTS}))
    generated = sum(len(tokenizer.encode(t, add_special_tokens=False)) for t in texts)
    assert metrics[names.GENERATED_TOKENS] == generated > 0
    assert metrics[names.ENERGY_PER_TOKEN] == pytest.approx(total / generated)

    # the sources, as a measurement run tags them; on a CPU CodeCarbon's models say so
    cpu = tags[names.TAG_SOURCE_PREFIX + "cpu"]
    assert tags[names.TAG_SOURCE_PREFIX + "gpu"] == "none" and tags[names.TAG_SOURCE_PREFIX + "ram"] == "estimate"
    assert cpu == "rapl" or cpu.startswith("estimate:")
    if cpu != "rapl":
        assert tags[names.TAG_HEADLINE] == f"ESTIMATE (cpu:{cpu}, ram:estimate)"
        assert tags[names.TAG_TRUST].startswith("estimate: no measured energy source here")
        assert metrics[names.WITH_ESTIMATES_PER_TOKEN] == pytest.approx(metrics[names.ENERGY_PER_TOKEN])
    assert names.TAG_STATUS not in tags  # never a measurement run the registry could select

    record = json.loads(Path(store.client.download_artifacts(run.info.run_id, names.ARTIFACT_ENERGY_EVALUATION))
                        .read_text())  # fmt: skip
    assert [c["rows"] for c in record["calls"]] == [1] * len(PROMPTS) and all(c["counts"] for c in record["calls"])
    assert sum(c["tokens"] for c in record["calls"]) == generated
    assert sum(c["measurement"]["cpu_j"] + c["measurement"]["ram_j"] for c in record["calls"]) == pytest.approx(total)
    assert result.artifacts["energy_evaluation"].uri.endswith(names.ARTIFACT_ENERGY_EVALUATION)


def test_a_meter_that_breaks_warns_once_and_keeps_what_it_measured(
    store: SimpleNamespace, energy_evaluator: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mlflow_energy.meter.host import HostEnergy

    stop, stops = HostEnergy.stop, []

    def breaks_on_the_second_window(self: HostEnergy, window: str) -> tuple[float, float]:
        stops.append(window)
        if len(stops) == 2:
            raise RuntimeError("RAPL counter unreadable")
        return stop(self, window)

    monkeypatch.setattr(HostEnergy, "stop", breaks_on_the_second_window)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@{ALIAS}")
    with caplog.at_level(logging.WARNING, logger="mlflow_energy.integrations.energy_evaluator"):
        result, run = evaluate(store, model, evaluator_config={"energy": {"warmup_calls": 0}})
    warned = [r for r in caplog.records if r.name == "mlflow_energy.integrations.energy_evaluator"]
    assert len(warned) == 1 and "measuring failed in window predict_2" in warned[0].getMessage()
    metrics, trust = run.data.metrics, run.data.tags[names.TAG_TRUST]
    assert metrics[names.REQUESTS] == 1 and metrics[names.ENERGY_PER_REQUEST] > 0  # the first window
    assert names.REQUEST_P50 in metrics and result.metrics[names.REQUESTS] == 1  # latency: every call
    assert "measuring failed in window predict_2 (RuntimeError: RAPL counter unreadable)" in trust
    assert f"energy covers 1 of {len(PROMPTS)} rows" in trust


def window(gpu: float | None, cpu: float, problems: list[str] | None = None) -> Measurement:
    return Measurement("w", 0.0, 1.0, {"0": gpu} if gpu is not None else {}, "nvml_counter", cpu, 1.0,
                       "estimate:cpu_load", "estimate", problems or [])  # fmt: skip


def test_the_headline_counts_measured_domains_and_rejected_windows_count_for_speed_only() -> None:
    calls = [Call("predict_1", 2, 1.0, window(10.0, 3.0), tokens=20), Call("predict_2", 2, 1.0, window(30.0, 3.0), 20),
             Call("predict_3", 2, 2.0, window(None, 3.0, ["gpu0 energy counter did not move"]), 20),
             Call("predict_4", 2, 1.0, window(20.0, 3.0), tokens=20)]  # fmt: skip
    m = figures(calls)
    assert m[names.TOTAL_ENERGY] == 60.0 and m[names.ENERGY_PER_REQUEST] == 10.0 and m[names.ENERGY_PER_TOKEN] == 1.0
    assert m[names.WITH_ESTIMATES_PER_TOKEN] == pytest.approx(72.0 / 60)  # CPU and RAM estimates added
    assert m[names.REQUESTS] == 6 and m[names.metric_key("measurement_rejected_windows")] == 1
    assert m[names.THROUGHPUT] == pytest.approx(80 / 5.0)  # every call counts for speed
    low, high = names.interval_keys(names.ENERGY_PER_REQUEST)
    assert m[low] < 10.0 < m[high]
    assert names.ENERGY_PER_TOKEN not in figures([Call("predict_1", 1, 1.0, window(1.0, 1.0), tokens=None)])


def test_text_models_and_models_without_a_type_are_evaluated_and_settings_are_checked() -> None:
    assert EnergyEvaluator.can_evaluate(model_type="text", evaluator_config={})
    assert EnergyEvaluator.can_evaluate(model_type=None, evaluator_config={})
    assert not EnergyEvaluator.can_evaluate(model_type="classifier", evaluator_config={})
    with pytest.raises(MlflowException, match="unknown setting"):
        EnergyEvaluatorConfig.from_dict({"batch": 4})
    with pytest.raises(MlflowException, match="batch_size must be a positive integer"):
        EnergyEvaluatorConfig.from_dict({"batch_size": 0})


def test_mlflow_finds_the_evaluator_through_its_entry_point() -> None:
    code = ("from mlflow.models.evaluation import list_evaluators; "
            "from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry as r; "
            "assert 'energy' in list_evaluators(), list_evaluators(); "
            "e = r.get_evaluator('energy'); print(type(e).__module__, type(e).__name__)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"reinstall (pip install -e .) after declaring the entry point: {proc.stderr[-2000:]}"
    assert proc.stdout.split() == ["mlflow_energy.integrations.energy_evaluator", "EnergyEvaluator"]
