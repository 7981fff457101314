"""A serving run's figures from its steady-state windows and request records."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlflow_energy.bench.result import BenchResult, ServingRun
from mlflow_energy.bench.summary import conclude
from mlflow_energy.config import RunConfig, ServingConfig, config_hash
from mlflow_energy.inference.load_generator import ERROR, STEADY, WARMUP, RequestRecord
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.report.headline import headline
from mlflow_energy.report.run_card import description
from mlflow_energy.store import names


def _request(index: int, window: int | None, sent: float, tokens: int, ttft: float = 0.1, phase: str = STEADY,
             status: str = "ok") -> RequestRecord:  # fmt: skip
    return RequestRecord(index, phase, sent, sent + ttft, sent + 1.0, 4, tokens, 3, status,
                         "HTTP 500: boom" if status == ERROR else None, window)  # fmt: skip


@pytest.fixture
def serving_result(window: Callable[..., Measurement]) -> BenchResult:
    """Two 2 s windows, [10, 12] and [12, 14] s, of 100 J and 120 J on the GPU. Requests last 1 s:
    two end in the first window (10 and 20 tokens), one straddles the edge (10 tokens, 5 in
    each), two more end in the second (10 each) and one is still running at its end (10 tokens,
    5 inside); one failed, one warm-up."""
    config = RunConfig(scenario="serving", serving=ServingConfig(slo_ttft_s=0.5))
    r = BenchResult(config, config_hash(config))
    r.idle = window("idle", 0.0, 2.0, 40.0)
    r.serving = ServingRun("stub", "m", [0], windows=[window("steady_1", 10.0, 2.0, 100.0),
                                                      window("steady_2", 12.0, 2.0, 120.0)])  # fmt: skip
    r.serving.requests = [
        _request(0, None, 5.0, 10, phase=WARMUP), _request(1, 0, 10.2, 10), _request(2, 0, 10.5, 20, ttft=0.6),
        _request(3, 1, 11.5, 10), _request(4, 1, 12.2, 10), _request(5, 1, 12.8, 10),
        _request(6, None, 12.6, 0, status=ERROR), _request(7, None, 13.5, 10),
    ]  # fmt: skip
    r.serving.ramp_up_s, r.serving.drain_s = 0.4, 0.5
    r.carbon_intensity_g_per_kwh = 360.0
    return r


def test_energy_is_divided_among_the_tokens_and_requests_of_the_windows(serving_result: BenchResult) -> None:
    conclude(serving_result, [])
    s = serving_result.summary
    assert s is not None
    # Tokens generated inside the windows: 10 + 20 + 5 in the first, 5 + 10 + 10 + 5 in the second.
    assert (s.energy_total_j, s.measurement_requests, s.measurement_generated_tokens) == (220.0, 5, 65)
    assert s.energy_j_per_token == pytest.approx(220 / 65)
    assert s.energy_j_per_request == pytest.approx(44.0)  # the five requests that ended inside
    assert s.measurement_prompt_tokens == 6 * 4  # prompts whose first token came inside a window
    assert s.energy_j_per_processed_token == pytest.approx(220 / (65 + 24))
    assert s.energy_wh_per_1k_requests == pytest.approx(44.0 / 3.6)
    # Two windows are too few for an interval.
    assert s.energy_j_per_token_ci95_low is None and s.energy_j_per_request_ci95_low is None
    assert s.energy_gpu_net_j == pytest.approx(220.0 - 20.0 * 4.0)  # idle 20 W over 4 s of windows


def test_rates_latencies_goodput_and_errors(serving_result: BenchResult) -> None:
    conclude(serving_result, [])
    s, a = serving_result.summary, serving_result.assessment
    assert s is not None and a is not None
    assert s.throughput_requests_per_s == pytest.approx(5 / 4.0)
    assert s.throughput_tokens_per_s == pytest.approx(65 / 4.0)
    assert s.throughput_goodput_requests_per_s == pytest.approx(4 / 4.0)  # one TTFT of 0.6 s misses the 0.5 s bound
    assert s.latency_request_s_p50 == pytest.approx(1.0) and s.latency_ttft_s_p99 == pytest.approx(0.6, rel=0.05)
    assert s.latency_tpot_ms_p50 == pytest.approx(0.9 / 9 * 1000)
    assert (s.measurement_errors, s.measurement_ramp_up_s, s.measurement_drain_s) == (1, 0.4, 0.5)
    assert any(w.startswith("1 request(s) failed (not counted); the first error: HTTP 500: boom") for w in a.warnings)
    metrics = names.summary_metrics(s)
    assert metrics[names.ENERGY_PER_REQUEST] == pytest.approx(44.0)
    assert names.interval_keys(names.ENERGY_PER_REQUEST)[0] not in metrics  # two windows: no interval


def test_a_window_without_tokens_gives_no_interval_and_says_why(serving_result: BenchResult, window) -> None:
    assert serving_result.serving is not None
    serving_result.serving.windows.append(window("steady_3", 20.0, 2.0, 90.0))  # nothing runs in it
    conclude(serving_result, [])
    s, a = serving_result.summary, serving_result.assessment
    assert s is not None and a is not None
    assert s.energy_j_per_token == pytest.approx(310 / 65) and s.energy_j_per_token_ci95_low is None
    assert s.energy_j_per_request_ci95_low is None
    assert any(w.startswith("no interval: a steady-state window generated no token") for w in a.warnings)


def test_a_serving_result_round_trips_through_json(serving_result: BenchResult, tmp_path) -> None:
    conclude(serving_result, [])
    serving_result.write(tmp_path)
    again = BenchResult.read(tmp_path)
    assert again.serving == serving_result.serving and again.summary == serving_result.summary
    assert [phase for phase, _ in again.windows()] == ["idle", "steady state", "steady state"]


def test_a_run_stopped_before_any_request_ended_in_a_window_has_a_headline_without_per_request(
        serving_result: BenchResult) -> None:  # fmt: skip
    # The server died in the second window: tokens were generated in the first, but no request ended there.
    assert serving_result.serving is not None
    serving_result.serving.windows = serving_result.serving.windows[:1]
    serving_result.serving.requests = [_request(0, None, 10.5, 10)]  # still running at the window's end
    conclude(serving_result, [])
    s = serving_result.summary
    assert s is not None and s.energy_j_per_request is None and s.energy_j_per_token is not None
    line = headline(serving_result)
    assert line is not None and line.startswith("energy per token ") and "per request" not in line
    assert description(serving_result).startswith(f"**{line}**")
