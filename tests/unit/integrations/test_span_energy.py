"""Energy on MLflow traces, with real MLflow tracing into a SQLite store and a fake GPU counter
(a clocked one: a GPU drawing a constant power, shown in steps): the rule for overlapping spans
and its sum, spans too short for the counter, no counter at all, the trace's totals, the user's
exception, and the shipped model's generate traced by the user."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import mlflow
import pytest

import mlflow_energy
from mlflow_energy.integrations import span_energy
from mlflow_energy.meter.gpu import NvmlGpus
from mlflow_energy.store import names

from fake_nvml import ClockedCounter, FakeGpu, FakeNvml

POWER_W, PERIOD_S = 100.0, 0.02


@pytest.fixture
def traces(traced_store: str) -> Iterator[Any]:
    """The test's traces, read back from its store once flushed."""

    def read() -> list[Any]:
        mlflow.flush_trace_async_logging()
        return mlflow.search_traces(return_type="list", order_by=["timestamp_ms ASC"])

    yield read
    mlflow_energy.autolog(disable=True)


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> ClockedCounter:
    """One fake GPU drawing POWER_W, its counter stepping every PERIOD_S, as autolog() finds it."""
    counter = ClockedCounter(power_w=POWER_W, period_s=PERIOD_S)
    fake = FakeNvml([FakeGpu("GPU-aaaa1111", counter=counter)])
    monkeypatch.setattr(span_energy, "NvmlGpus", lambda **kwargs: NvmlGpus(nvml=fake, **kwargs))
    return counter


def llm_call(seconds: float, output_tokens: int | None = 10) -> None:
    with mlflow.start_span("request", span_type="CHAIN"), mlflow.start_span("generate", span_type="LLM") as span:
        if output_tokens is not None:
            span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 4, "output_tokens": output_tokens,
                                                          "total_tokens": 4 + output_tokens})  # fmt: skip
        time.sleep(seconds)


def spans_named(trace: Any, name: str) -> list[Any]:
    """The trace's spans of this name, in start order (MLflow 3.4 numbers the names of a trace's
    spans that share one: ``generate_1``, ``generate_2``)."""
    return sorted((s for s in trace.data.spans if re.fullmatch(rf"{name}(_\d+)?", s.name)),
                  key=lambda s: s.start_time_ns)  # fmt: skip


def test_overlapping_spans_share_the_gpu_equally_and_their_shares_sum_to_the_energy(traces, gpu) -> None:
    mlflow_energy.autolog(period_s=0.002)
    started, ended = [threading.Event() for _ in range(3)], [threading.Event() for _ in range(3)]
    # The order of the first three spans' starts and ends, whatever the machine's speed: they start
    # in turn (all three are open once the third has), then the second, first and third end in turn.
    waits = [(None, ended[1]), (started[0], started[2]), (started[1], ended[0])]  # (before starting, before ending)

    def client(i: int) -> None:
        before_start, before_end = waits[i]
        if before_start is not None:
            before_start.wait()
        with mlflow.start_span("request", span_type="CHAIN"), mlflow.start_span("generate", span_type="LLM") as span:
            span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 4, "output_tokens": 10, "total_tokens": 14})
            started[i].set()
            time.sleep(0.1)  # longer than the counter's update period
            before_end.wait()
        ended[i].set()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    llm_call(0.3)  # the last one alone, once the others have ended
    llm = [spans_named(t, "generate")[0] for t in traces()]
    assert len(llm) == 4
    intervals = [(s.start_time_ns, s.end_time_ns) for s in llm]
    # The rule, from the spans' own times: each stretch in equal parts to the spans open in it.
    cuts = sorted({t for pair in intervals for t in pair})
    expected = [0.0] * len(llm)
    for a, b in zip(cuts, cuts[1:], strict=False):
        open_here = [i for i, (s, e) in enumerate(intervals) if s <= a and e >= b]
        for i in open_here:
            expected[i] += POWER_W * (b - a) / 1e9 / len(open_here)
    shares = [s.attributes[names.SPAN_ENERGY_J] for s in llm]
    step_j = POWER_W * PERIOD_S  # the counter shows the energy in steps of this much
    for share, want in zip(shares, expected, strict=True):
        assert share == pytest.approx(want, abs=2 * step_j)
    # The sum: the energy drawn while any span was open (power x the union of the intervals).
    union_s = sum((b - a) / 1e9 for a, b in zip(cuts, cuts[1:], strict=False)
                  if any(s <= a and e >= b for s, e in intervals))  # fmt: skip
    assert sum(shares) == pytest.approx(POWER_W * union_s, abs=2 * step_j * len(llm))
    assert [s.attributes[names.SPAN_CONCURRENT] for s in llm] == [3, 3, 3, 1]
    for span in llm:
        assert span.attributes[names.SPAN_ENERGY_SOURCE] == "gpu:nvml_counter"
        assert span.attributes[names.SPAN_ENERGY_KIND] == "measured"
        assert span.attributes[names.SPAN_OUTPUT_TOKENS] == 10
        assert span.attributes[names.SPAN_J_PER_OUTPUT_TOKEN] == pytest.approx(
            span.attributes[names.SPAN_ENERGY_J] / 10)


def test_a_trace_gets_its_llm_spans_totals_on_the_root_span_and_as_tags(traces, gpu) -> None:
    mlflow_energy.autolog(period_s=0.002)
    with mlflow.start_span("agent", span_type="AGENT"):
        llm_call(0.2, output_tokens=5)
        llm_call(0.3, output_tokens=7)
    (trace,) = traces()
    shares = [s.attributes[names.SPAN_ENERGY_J] for s in spans_named(trace, "generate")]
    root = spans_named(trace, "agent")[0]
    assert float(trace.info.tags[names.TRACE_ENERGY_J]) == pytest.approx(sum(shares), rel=1e-5)
    assert root.attributes[names.TRACE_ENERGY_J] == trace.info.tags[names.TRACE_ENERGY_J]
    assert trace.info.tags[names.TRACE_OUTPUT_TOKENS] == "12"
    assert trace.info.tags[names.TRACE_LLM_SPANS] == "2 (2 with an energy figure)"
    assert sum(shares) == pytest.approx(POWER_W * 0.5, abs=3 * POWER_W * PERIOD_S)


def test_a_span_shorter_than_the_counter_period_gets_a_note_and_no_figure(traces, gpu) -> None:
    mlflow_energy.autolog(period_s=0.002)
    time.sleep(10 * PERIOD_S)  # the counter's period is learnt from its own steps
    with mlflow.start_span("agent", span_type="AGENT"):
        llm_call(PERIOD_S / 4)
        llm_call(0.2)
    (trace,) = traces()
    short, long = spans_named(trace, "generate")
    assert names.SPAN_ENERGY_J not in short.attributes and names.SPAN_ENERGY_KIND not in short.attributes
    note = re.fullmatch(r"shorter than the GPU energy counter's update period \(([0-9.]+) s\): no figure",
                        short.attributes[names.SPAN_ENERGY_NOTE])  # fmt: skip
    assert note and float(note[1]) == pytest.approx(PERIOD_S, rel=0.2)  # learnt from the counter's own steps
    assert long.attributes[names.SPAN_ENERGY_J] > 0
    # A part unmeasured: the trace gets no total, and says why.
    assert names.TRACE_ENERGY_J not in trace.info.tags
    assert trace.info.tags[names.TRACE_LLM_SPANS] == "2 (1 with an energy figure)"


def test_without_a_gpu_counter_spans_say_so_and_carry_no_number(traces, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(span_energy, "NvmlGpus", lambda **kwargs: NvmlGpus(disabled_reason="NVML did not initialise"))
    with mlflow_energy.trace_energy():
        llm_call(0.05)
    (trace,) = traces()
    span = spans_named(trace, "generate")[0]
    assert span.attributes[names.SPAN_ENERGY_SOURCE] == "none"
    assert span.attributes[names.SPAN_ENERGY_NOTE] == "no GPU energy counter is readable here: NVML did not initialise"
    assert names.SPAN_ENERGY_J not in span.attributes and names.TRACE_ENERGY_J not in trace.info.tags


def test_trace_energy_measures_its_block_only(traces, gpu) -> None:
    with mlflow_energy.trace_energy(period_s=0.002):
        llm_call(0.1)
    llm_call(0.1)
    inside, outside = traces()
    assert names.SPAN_ENERGY_J in spans_named(inside, "generate")[0].attributes
    assert not any(k.startswith(names.SPAN_PREFIX) for k in spans_named(outside, "generate")[0].attributes)


def test_the_users_exception_reaches_them_and_the_trace_keeps_its_figures(traces, gpu) -> None:
    mlflow_energy.autolog(period_s=0.002)

    @mlflow.trace(span_type="LLM")
    def failing_call() -> None:
        time.sleep(0.1)
        raise ValueError("the model refused")

    with pytest.raises(ValueError, match="the model refused"):
        failing_call()
    (trace,) = traces()
    assert trace.info.state == "ERROR"
    span = trace.data.spans[0]
    lasted_s = (span.end_time_ns - span.start_time_ns) / 1e9  # 0.1 s, or more on a busy machine
    assert span.attributes[names.SPAN_ENERGY_J] == pytest.approx(POWER_W * lasted_s, abs=2 * POWER_W * PERIOD_S)


def test_a_counter_that_fails_never_fails_the_users_call(traces, gpu, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow_energy.autolog(period_s=0.002)
    timeline = span_energy._active.timeline

    def broken(*args: Any) -> None:
        raise RuntimeError("NVML_ERROR_GPU_IS_LOST")

    monkeypatch.setattr(timeline, "energy_j", broken)
    llm_call(0.15)
    monkeypatch.undo()
    monkeypatch.setattr(timeline, "read_now", broken)  # the reading thread's reads fail from now on
    time.sleep(2 * span_energy.STALE_S)
    llm_call(0.15)
    failed, unread = (spans_named(t, "generate")[0] for t in traces())
    assert failed.attributes[names.SPAN_ENERGY_NOTE] == "not measured: RuntimeError: NVML_ERROR_GPU_IS_LOST"
    assert unread.attributes[names.SPAN_ENERGY_NOTE] == "the counter was not read over the whole span: no figure"
    assert names.SPAN_ENERGY_J not in failed.attributes and names.SPAN_ENERGY_J not in unread.attributes


def test_the_shipped_models_generate_traced_by_the_user_carries_the_energy(traces, gpu) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = mlflow_energy.shipped_model_path("tiny-stories")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    mlflow_energy.autolog(period_s=0.002)
    time.sleep(10 * PERIOD_S)  # the counter's period is learnt from its own steps

    @mlflow.trace(span_type="LLM")
    def generate(prompt: str) -> str:
        inputs = tokenizer(prompt, return_tensors="pt", return_token_type_ids=False)
        output = model.generate(**inputs, max_new_tokens=24, min_new_tokens=24, do_sample=False)
        new = output.shape[1] - inputs["input_ids"].shape[1]
        mlflow.get_current_active_span().set_attribute(
            "mlflow.chat.tokenUsage", {"input_tokens": inputs["input_ids"].shape[1], "output_tokens": new,
                                       "total_tokens": output.shape[1]})  # fmt: skip
        return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:])

    generate("Once upon a time")
    (trace,) = traces()
    span = trace.data.spans[0]
    seconds = (span.end_time_ns - span.start_time_ns) / 1e9
    assert span.attributes[names.SPAN_OUTPUT_TOKENS] == 24
    if seconds >= PERIOD_S:  # a fast machine may generate 24 tokens within one counter step
        assert span.attributes[names.SPAN_ENERGY_J] == pytest.approx(POWER_W * seconds, abs=2 * POWER_W * PERIOD_S)
    else:
        assert span.attributes[names.SPAN_ENERGY_NOTE].startswith("shorter than")


def test_shared_energy_splits_each_stretch_among_the_spans_open_in_it() -> None:
    def linear(a: int, b: int) -> float:  # 1 J per ns
        return float(b - a)

    share, most = span_energy.shared_energy(linear, 0, 100, [(50, 150), (20, 40), (60, None)])
    # 0-20 alone, 20-40 with one, 40-50 alone, 50-60 with one, 60-100 with two
    assert share == pytest.approx(20 + 20 / 2 + 10 + 10 / 2 + 40 / 3)
    assert most == 3
    assert span_energy.shared_energy(lambda a, b: None, 0, 100, []) == (None, 1)
