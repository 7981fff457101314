"""From windows to figures: the arithmetic of the Summary, the metric names, the JSON round trip."""

from dataclasses import fields
from pathlib import Path

import pytest

from mlflow_energy.bench.result import BenchResult, RepetitionWindow, Summary
from mlflow_energy.bench.summary import conclude, summarize
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import TimelineSample
from mlflow_energy.report.headline import headline
from mlflow_energy.store.names import ALL_METRIC_KEYS, metric_key, summary_metrics

# sample_result (conftest.py): batch 2 x 10 new tokens, so 20 tokens per generate call; windows of
# 400 J and 440 J (398.5 J GPU + 1.5 J CPU and RAM estimates each) and a rejected third one.


def test_summary_arithmetic(sample_result: BenchResult) -> None:
    timeline = [TimelineSample(t, 0, "gpu0", power_w=p) for t, p in [(5.5, 999.0), (7.0, 210.0), (9.0, 230.0)]]
    s = summarize(sample_result, timeline)
    # The rejected third window counts for speed but not for energy.
    assert s.measurement_repetitions == 2 and s.measurement_rejected_windows == 1
    assert s.measurement_generated_tokens == 80 and s.measurement_requests == 8
    # Measured first: the headline counts the GPU counter only; CodeCarbon's CPU and RAM
    # estimates (3 J) are kept under the with_estimates names and in emissions.
    assert s.energy_total_j == pytest.approx(837.0) == pytest.approx(s.energy_gpu_j)
    assert s.energy_with_estimates_total_j == pytest.approx(s.energy_gpu_j + s.energy_cpu_j + s.energy_ram_j)
    assert s.energy_j_per_token == pytest.approx(837.0 / 80)
    assert s.energy_with_estimates_j_per_token == pytest.approx(840.0 / 80)
    assert s.energy_j_per_request == pytest.approx(837.0 / 8)
    assert s.energy_wh_per_1k_requests == pytest.approx(837.0 / 8 * 1000 / 3600)
    assert s.energy_idle_w == pytest.approx(50.0) and s.energy_gpu_idle_w == pytest.approx(50.0)
    assert s.energy_net_j == pytest.approx(837.0 - 50.0 * 4.0)
    assert s.energy_gpu_net_j == pytest.approx(837.0 - 50.0 * 4.0)
    assert s.energy_gpu_net_j_per_token == pytest.approx((837.0 - 200.0) / 80)
    assert s.energy_prefill_j == pytest.approx(6.0)
    # 209.25 J per call, minus 6 J prefill, over 2 rows x 9 decoded tokens.
    assert s.energy_decode_j_per_token == pytest.approx((837.0 / 4 - 6.0) / 18)
    per_window = [398.5 / 40, 438.5 / 40]
    assert s.energy_j_per_token_std == pytest.approx(abs(per_window[1] - per_window[0]) / 2**0.5)
    assert s.measurement_energy_cv == pytest.approx(s.energy_j_per_token_std / (sum(per_window) / 2))
    assert s.energy_j_per_token_ci95_low is None  # two valid windows are too few for an interval
    assert s.efficiency_tokens_per_kwh == pytest.approx(80 / (837.0 / 3.6e6))
    assert s.emissions_g_co2e == pytest.approx(840.0 / 3.6e6 * 1.5 * 360.0)
    assert s.power_gpu_mean_w == pytest.approx(837.0 / 4.0)
    assert s.power_gpu_max_w == 230.0  # the 999 W sample lies outside the generate windows
    assert s.throughput_tokens_per_s == pytest.approx(120 / 6.0)  # all three windows
    assert s.latency_ttft_s_p50 == pytest.approx(0.1)
    assert s.latency_tpot_ms_p50 == pytest.approx((1.0 - 0.1) / 9 * 1000)


def test_no_gpu_means_no_gpu_figures(sample_result: BenchResult) -> None:
    r = sample_result
    for m in [r.idle, *(w.measurement for w in r.repetitions)]:
        m.gpu_j, m.gpu_source, m.problems = {}, "none", []
    conclude(r, [])
    s, a = r.summary, r.assessment
    assert s.energy_gpu_j is None and s.energy_gpu_net_j is None and s.power_gpu_mean_w is None
    # Nothing measured: the estimate is the headline, and says so.
    assert s.energy_total_j == pytest.approx(4.5) and s.energy_idle_w == pytest.approx(1.0)
    assert s.energy_with_estimates_total_j == pytest.approx(4.5)
    assert a.headline == "estimate" and a.headline_sources == ["cpu:estimate:cpu_load", "ram:estimate"]
    assert a.warnings[0].startswith("estimate: no measured energy source")
    assert headline(r).endswith("ESTIMATE (cpu:estimate:cpu_load, ram:estimate)")


def test_rapl_counts_as_measured_and_ram_estimate_stays_out(sample_result: BenchResult) -> None:
    r = sample_result
    for m in [r.idle, *(w.measurement for w in r.repetitions)]:
        m.gpu_j, m.gpu_source, m.problems, m.cpu_source = {}, "none", [], "rapl"
    conclude(r, [])
    assert r.summary.energy_total_j == pytest.approx(3.0)  # CPU (RAPL) only: 1 J in each of 3 windows
    assert r.assessment.headline_sources == ["cpu:rapl"] and r.assessment.estimated_sources == ["ram:estimate"]


def test_negative_net_figures_are_below_the_noise_floor_not_logged(sample_result: BenchResult, window) -> None:
    r = sample_result
    r.idle = window("idle", 3.0, 2.0, 1000.0)  # 500 W idle: more than the windows drew
    conclude(r, [])
    assert r.summary.energy_net_j is None and r.summary.energy_gpu_net_j_per_token is None
    assert {"energy_net_j", "energy_net_j_per_token", "energy_gpu_net_j"} <= set(r.assessment.below_noise_floor)
    assert all(v >= 0 for v in summary_metrics(r.summary).values())


def test_a_wide_interval_is_flagged_and_a_tight_one_is_not(sample_result: BenchResult, window) -> None:
    r = sample_result
    conclude(r, [])  # two valid windows: no interval, and the verdict says why
    assert any(w.startswith("2 valid window(s): an interval needs at least 3") for w in r.assessment.warnings)
    r.repetitions.append(RepetitionWindow(window("generate_4", 12.0, 2.0, 418.5), [1.0, 1.0]))
    conclude(r, [])  # three windows 10% apart: far wider than the 2% target
    assert r.assessment.target_reached is False
    assert any("the machine is noisy" in w for w in r.assessment.warnings)
    r.repetitions = [RepetitionWindow(window(f"generate_{i}", 6.0 + 2 * i, 2.0, 398.5 + i % 2), [1.0, 1.0])
                     for i in range(6)]  # fmt: skip
    conclude(r, [])
    assert r.assessment.target_reached is True and r.assessment.warnings == []


def test_result_round_trips_through_json(tmp_path: Path, sample_result: BenchResult) -> None:
    r = sample_result
    r.summary = summarize(r, [])
    r.write(tmp_path)
    back = BenchResult.read(tmp_path)
    assert back == r
    assert isinstance(back.repetitions[0].measurement, Measurement)


def test_every_summary_field_has_a_sectioned_metric_name() -> None:
    keys = {metric_key(f.name) for f in fields(Summary)}
    assert keys == set(ALL_METRIC_KEYS)
    for key in [
        "energy/total_j", "energy/gpu_j", "energy/cpu_j", "energy/ram_j", "energy/gpu_idle_w",
        "energy/gpu_net_j", "energy/j_per_token", "energy/gpu_net_j_per_token", "energy/prefill_j",
        "energy/decode_j_per_token", "energy/j_per_request", "energy/wh_per_1k_requests",
        "efficiency/tokens_per_kwh", "emissions/g_co2e", "emissions/g_co2e_per_1k_tokens",
        "power/gpu_mean_w", "power/gpu_max_w", "throughput/tokens_per_s", "throughput/requests_per_s",
        "latency/ttft_s_p50", "latency/ttft_s_p90", "latency/tpot_ms_p50", "latency/tpot_ms_p90",
        "latency/request_s_p50", "latency/request_s_p90", "memory/gpu_peak_mb", "memory/ram_peak_mb",
        "measurement/repetitions", "measurement/window_s", "measurement/energy_cv",
    ]:  # fmt: skip
        assert key in keys, key


def test_missing_figures_are_not_logged() -> None:
    metrics = summary_metrics(Summary(energy_total_j=3.0))
    assert metrics == {"energy/total_j": 3.0}
    with pytest.raises(ValueError):
        metric_key("joules_total")


def test_per_gpu_energy_is_logged_only_for_several_gpus(sample_result: BenchResult) -> None:
    from mlflow_energy.bench.summary import gpu_j_by_device
    from mlflow_energy.store.names import per_gpu_energy_metrics

    r = sample_result
    assert per_gpu_energy_metrics(gpu_j_by_device(r)) == {}  # one GPU: energy/gpu_j says it all
    for rep in r.repetitions:
        rep.measurement.gpu_j["1"] = 10.0
    by_device = gpu_j_by_device(r)
    assert by_device == {"0": pytest.approx(837.0), "1": pytest.approx(20.0)}  # the rejected window is left out
    assert per_gpu_energy_metrics(by_device) == {"energy/gpu0_j": pytest.approx(837.0),
                                                 "energy/gpu1_j": pytest.approx(20.0)}  # fmt: skip


def test_a_rejected_first_window_does_not_change_what_the_headline_counts(sample_result: BenchResult) -> None:
    r = sample_result
    r.repetitions.reverse()  # the window whose GPU reading was rejected comes first
    r.repetitions[0].measurement.gpu_j = {}  # as the meter leaves a rejected reading
    conclude(r, [])
    assert r.summary.energy_total_j == pytest.approx(837.0)  # the GPU counter, not CPU + RAM estimates
    assert r.assessment.headline == "measured"
