"""The ``energy`` scorer in a real ``mlflow.genai.evaluate`` into a SQLite store, beside a quality
scorer: per-row J per request and per output token with their source, the evaluation run's mean,
median and p90, and rows it cannot measure left without a value."""

from __future__ import annotations

import time
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.genai.scorers import scorer

import mlflow_energy
from mlflow_energy.integrations import span_energy
from mlflow_energy.integrations.energy_scorer import PER_OUTPUT_TOKEN, PER_REQUEST
from mlflow_energy.meter.gpu import NvmlGpus

from fake_nvml import ClockedCounter, FakeGpu, FakeNvml

POWER_W, PERIOD_S = 100.0, 0.02
QUESTIONS = ["short", "a longer question", "the longest question of the three"]


@scorer
def answered(outputs: str) -> bool:
    """A quality scorer of the simplest kind, beside the energy one."""
    return bool(outputs)


@pytest.fixture
def evaluate(traced_store: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = FakeNvml([FakeGpu("GPU-aaaa1111", counter=ClockedCounter(power_w=POWER_W, period_s=PERIOD_S))])
    monkeypatch.setattr(span_energy, "NvmlGpus", lambda **kwargs: NvmlGpus(nvml=fake, **kwargs))
    monkeypatch.setenv("MLFLOW_GENAI_EVAL_MAX_WORKERS", "1")  # rows one after another: each alone on the GPU

    @mlflow.trace(span_type="LLM")
    def model(question: str) -> str:
        time.sleep(0.1 * len(question.split()))
        span = mlflow.get_current_active_span()
        if span is not None:  # evaluate first calls the function once untraced, to check it
            span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 1, "output_tokens": 2 * len(question.split()),
                                                          "total_tokens": 1 + 2 * len(question.split())})  # fmt: skip
        return question.upper()

    def run() -> Any:
        data = pd.DataFrame({"inputs": [{"question": q} for q in QUESTIONS]})
        return mlflow.genai.evaluate(data=data, predict_fn=model, scorers=[answered, mlflow_energy.energy])

    yield run
    mlflow_energy.autolog(disable=True)


def test_each_row_gets_its_joules_and_the_run_gets_mean_median_and_p90(evaluate) -> None:
    mlflow_energy.autolog(period_s=0.002)
    result = evaluate()
    rows = result.result_df.sort_values(f"{PER_REQUEST}/value")
    for words, (_, row) in zip((1, 3, 6), rows.iterrows(), strict=True):
        assert row[f"{PER_REQUEST}/value"] == pytest.approx(POWER_W * 0.1 * words, abs=2 * POWER_W * PERIOD_S)
        assert row[f"{PER_OUTPUT_TOKEN}/value"] == pytest.approx(row[f"{PER_REQUEST}/value"] / (2 * words))
        assert "gpu:nvml_counter, measured, over 1 LLM span(s)" in row[f"{PER_REQUEST}/rationale"]
        assert row["answered/value"] in (True, "yes")
    per_request = sorted(rows[f"{PER_REQUEST}/value"])
    logged = mlflow.get_run(result.run_id).data.metrics
    assert logged[f"{PER_REQUEST}/mean"] == pytest.approx(sum(per_request) / 3)
    assert logged[f"{PER_REQUEST}/median"] == pytest.approx(per_request[1])
    assert per_request[1] < logged[f"{PER_REQUEST}/p90"] <= per_request[2]
    assert {f"{PER_OUTPUT_TOKEN}/mean", f"{PER_OUTPUT_TOKEN}/median", f"{PER_OUTPUT_TOKEN}/p90"} <= set(logged)
    assert "answered/mean" in logged


def test_rows_traced_without_energy_get_no_value_and_say_why(evaluate) -> None:
    result = evaluate()  # autolog() never called
    for _, row in result.result_df.iterrows():
        assert row[f"{PER_REQUEST}/value"] is None or pd.isna(row[f"{PER_REQUEST}/value"])
        assert row[f"{PER_REQUEST}/rationale"] == (
            "not measured: 1 of 1 LLM span(s) have no energy figure: no energy attributes (was autolog() on?)")
    assert not any(k.startswith(PER_REQUEST) for k in mlflow.get_run(result.run_id).data.metrics)
