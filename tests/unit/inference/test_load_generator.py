"""The load generator on a stub endpoint: the arrival process honours concurrency and rate,
tokens come from usage, failures are recorded and judged. (The real server is in
test_serving_e2e.py.)"""

from __future__ import annotations

import time

import pytest

from mlflow_energy.bench.serving import check_error_share
from mlflow_energy.inference.load_generator import ERROR, OK, LoadGenerator, LoadPlan, RequestRecord
from mlflow_energy.inference.server import ServerError, pick_model

from processes import wait_until
from stub_server import MODEL, StubServer, StubState


def _plan(url: str, **kw: object) -> LoadPlan:
    defaults: dict = {
        "base_url": url,
        "model": MODEL,
        "prompts": ["a", "b", "c"],
        "output_tokens": [8],
        "concurrency": 3,
    }
    return LoadPlan(**(defaults | kw))


def _most_in_flight(records: list[RequestRecord]) -> int:
    """The most requests open at one instant, from the records' own send and end times."""
    edges = sorted([(r.sent_s, 1) for r in records] + [(r.end_s, -1) for r in records if r.end_s is not None])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def _run(generator: LoadGenerator, requests: int) -> None:
    generator.start()
    wait_until(lambda: len(generator.completed()) >= requests, f"{requests} requests")
    generator.stop_sending()
    assert generator.wait_drained(60)


def test_closed_loop_keeps_concurrency_requests_in_flight_and_counts_tokens_from_usage() -> None:
    state = StubState()
    with StubServer(state) as url:
        generator = LoadGenerator(_plan(url), time.perf_counter)
        _run(generator, 20)
    records = generator.records
    assert all(r.status == OK for r in records), [r.error for r in records]
    assert state.max_in_flight <= 3 and _most_in_flight(records) <= 3
    assert state.requests == len(records)
    assert {(r.completion_tokens, r.chunks, r.prompt_tokens) for r in records} == {(10, 5, 3)}
    assert all(r.ttft_s is not None and 0 < r.ttft_s <= r.latency_s for r in records)  # type: ignore[operator]
    # Inter-token latency divides the time after the first chunk by the usage's tokens after the first.
    r = records[0]
    assert r.tpot_ms == pytest.approx((r.end_s - r.first_token_s) / 9 * 1000)  # type: ignore[operator]
    assert {b["stream"] for b in state.bodies} == {True}
    assert {b["stream_options"]["include_usage"] for b in state.bodies} == {True}
    assert not any("ignore_eos" in b for b in state.bodies)  # natural length: the model stops when it stops


def test_fixed_length_asks_for_exactly_max_tokens() -> None:
    state = StubState()
    with StubServer(state) as url:
        generator = LoadGenerator(_plan(url, fixed_length=True, concurrency=1), time.perf_counter)
        generator.warm_up(2)
    assert [(b["min_tokens"], b["ignore_eos"], b["max_tokens"]) for b in state.bodies] == [(8, True, 8)] * 2


def test_each_request_asks_for_a_length_drawn_from_the_plan_and_records_it() -> None:
    state = StubState()
    with StubServer(state) as url:
        generator = LoadGenerator(_plan(url, output_tokens=[3, 50, 200], concurrency=2), time.perf_counter)
        generator.warm_up(30)
    asked = [b["max_tokens"] for b in state.bodies]
    assert set(asked) == {3, 50, 200}
    assert sorted(r.max_tokens for r in generator.records) == sorted(asked)


def test_open_loop_waits_the_drawn_poisson_gaps_and_caps_requests_in_flight() -> None:
    state = StubState(token_s=0.02)
    with StubServer(state) as url:
        generator = LoadGenerator(_plan(url, request_rate=10.0, concurrency=2), time.perf_counter)
        _run(generator, 30)
    records = generator.records
    assert state.max_in_flight <= 2 and _most_in_flight(records) <= 2
    gaps = generator.arrival_gaps_s
    sent = [r.sent_s for r in records]
    # Each request leaves no earlier than its arrival: the drawn gap after the one before it. A
    # request's send time is taken when its task first runs, which on a busy machine can come
    # late behind the other threads (the stub server, this test's polling): the bound allows
    # 50 ms of that, and the gaps (100 ms on average) are drawn long enough to be told from it.
    late_s = 0.05
    assert all(later - earlier >= gap - late_s for earlier, later, gap in zip(sent, sent[1:], gaps[1:], strict=False))


def test_the_arrival_process_is_poisson_at_the_asked_rate() -> None:
    """The drawn gaps (seeded: the same at every run) average 1/rate and spread as an exponential's."""
    generator = LoadGenerator(_plan("http://127.0.0.1:9/v1", request_rate=5.0), time.perf_counter)
    gaps = [generator._gaps.expovariate(5.0) for _ in range(2000)]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(0.2, rel=0.06)
    # An exponential's standard deviation equals its mean.
    assert (sum((g - mean) ** 2 for g in gaps) / len(gaps)) ** 0.5 == pytest.approx(mean, rel=0.1)


def test_failed_requests_are_recorded_and_too_many_fail_the_run_quoting_the_first() -> None:
    state = StubState(fail_every=2)
    with StubServer(state) as url:
        generator = LoadGenerator(_plan(url, concurrency=1), time.perf_counter)
        _run(generator, 12)
    failed = [r for r in generator.records if r.status == ERROR]
    assert failed and all(r.error and r.error.startswith("HTTP 500:") for r in failed)
    assert "stub failure 2" in (failed[0].error or "")
    with pytest.raises(ServerError, match=r"requests failed, more than serving.max_error_share=0.05; "
                                          r"the first error: HTTP 500: .*stub failure 2"):  # fmt: skip
        check_error_share(generator.completed(), 0.05, final=True)
    check_error_share(generator.completed(), 0.6, final=True)  # within a looser bound: no error


def test_nothing_listening_and_an_unserved_model_are_one_sentence_each() -> None:
    with StubServer(StubState()) as url:
        assert pick_model(url, None) == MODEL
        with pytest.raises(ServerError, match=r"does not serve model 'nope': it lists stub-model; set serving.model"):
            pick_model(url, "nope")
    with pytest.raises(ServerError, match=r"^nothing answers at serving.url=http://127.0.0.1:9/v1 .*start the server"):
        pick_model("http://127.0.0.1:9/v1", None)


def test_a_server_that_cannot_list_its_models_is_trusted_with_the_named_one() -> None:
    with StubServer(StubState(models_status=500)) as url:
        assert pick_model(url, "whatever-it-serves") == "whatever-it-serves"
        with pytest.raises(ServerError, match=r"does not serve one model: it lists none; set serving.model_name"):
            pick_model(url, None)
