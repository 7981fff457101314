"""Energy on traces end to end: a real `transformers serve` of the shipped tiny model on the CPU,
the real OpenAI client under `mlflow.openai.autolog()`, traces in a real SQLite store. The GPU
counter is the one fake (CI has no GPU): a clocked counter of a GPU drawing a constant power."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

import mlflow_energy
from mlflow_energy.inference.server import ManagedServer
from mlflow_energy.integrations import span_energy
from mlflow_energy.meter.gpu import NvmlGpus
from mlflow_energy.store import names

from fake_nvml import ClockedCounter, FakeGpu, FakeNvml
from processes import REPO, cli_env

pytestmark = pytest.mark.e2e

POWER_W, PERIOD_S = 100.0, 0.02


@pytest.fixture
def openai_traced(traced_store: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fake = FakeNvml([FakeGpu("GPU-aaaa1111", counter=ClockedCounter(power_w=POWER_W, period_s=PERIOD_S))])
    monkeypatch.setattr(span_energy, "NvmlGpus", lambda **kwargs: NvmlGpus(nvml=fake, **kwargs))
    mlflow.openai.autolog()
    mlflow_energy.autolog(period_s=0.002)
    yield
    mlflow_energy.autolog(disable=True)
    mlflow.openai.autolog(disable=True)


def test_a_client_loop_gets_a_span_per_request_whose_energies_sum_to_the_measured_total(
        tiny_server: ManagedServer, openai_traced: None) -> None:  # fmt: skip
    import openai

    client = openai.OpenAI(base_url=tiny_server.base_url, api_key="unused")
    usages: list[int] = []

    def loop(worker: int) -> None:
        for i in range(3):
            answer = client.completions.create(model=tiny_server.serves, prompt=f"A story {worker}-{i}:", max_tokens=16)
            usages.append(answer.usage.completion_tokens)

    workers = [threading.Thread(target=loop, args=(w,)) for w in range(2)]  # two requests in flight at once
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(return_type="list")
    assert len(traces) == 6
    spans = [s for t in traces for s in t.data.spans if s.span_type == "LLM"]
    assert len(spans) == 6  # one per request
    measured = [s for s in spans if names.SPAN_ENERGY_J in s.attributes]
    too_short = [s for s in spans if s.attributes.get(names.SPAN_ENERGY_NOTE, "").startswith("shorter than")]
    assert len(measured) + len(too_short) == 6 and measured  # a CPU server's request lasts well over 20 ms
    assert sorted(s.attributes[names.SPAN_OUTPUT_TOKENS] for s in spans) == sorted(usages)
    # The sum over spans is the energy drawn while any request was open: power x their union.
    intervals = sorted((s.start_time_ns, s.end_time_ns) for s in measured)
    union_ns, reach = 0, 0
    for start, end in intervals:
        union_ns += max(0, end - max(start, reach))
        reach = max(reach, end)
    total = sum(s.attributes[names.SPAN_ENERGY_J] for s in measured)
    assert total == pytest.approx(POWER_W * union_ns / 1e9, abs=2 * POWER_W * PERIOD_S * len(measured))
    assert max(s.attributes[names.SPAN_CONCURRENT] for s in measured) == 2
    for trace in traces:
        (llm,) = [s for s in trace.data.spans if s.span_type == "LLM"]
        if names.SPAN_ENERGY_J in llm.attributes:
            assert float(trace.info.tags[names.TRACE_ENERGY_J]) == pytest.approx(llm.attributes[names.SPAN_ENERGY_J],
                                                                                 rel=1e-5)  # fmt: skip


def test_the_example_evaluates_the_served_model_with_a_quality_and_the_energy_scorer(
        tiny_server: ManagedServer, tmp_path: Path, tracking_uri: str) -> None:  # fmt: skip
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "evaluate_served_energy.py"), "--base-url", tiny_server.base_url,
         "--rows", "3", "--max-tokens", "8", "--tracking-uri", tracking_uri],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("served-model-evaluation")
    (run,) = client.search_runs([experiment.experiment_id])
    assert f"\nevaluation run {run.info.run_id}:\n" in proc.stdout
    assert "names_the_animal/mean" in run.data.metrics
    traces = client.search_traces(locations=[experiment.experiment_id])
    assert len(traces) >= 3
    # This machine reads no GPU counter: the energy column says so, and no energy metric is made up.
    assert "j_per_request/energy/mean" not in run.data.metrics
    assert "  energy: not measured: 1 of 1 LLM span(s) have no energy figure: no GPU energy counter is readable " \
           "here: " in proc.stdout  # fmt: skip
