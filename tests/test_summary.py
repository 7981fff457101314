"""From windows to figures: the arithmetic of the Summary, the metric names, the JSON round trip."""

from dataclasses import fields
from pathlib import Path

import pytest

from mlflow_energy.bench.result import BenchResult, PrefillWindow, RepetitionWindow, Summary
from mlflow_energy.bench.summary import summarize
from mlflow_energy.config import RunConfig, as_dict, config_hash
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import TimelineSample
from mlflow_energy.tracking.names import ALL_METRIC_KEYS, metric_key, summary_metrics

BATCH, NEW = 2, 10  # 20 tokens per generate call


def window(name: str, start: float, duration: float, gpu: float, cpu: float = 1.0, ram: float = 0.5, **kw) -> Measurement:
    return Measurement(name, start, duration, {"0": gpu}, "nvml_counter", cpu, ram, "estimate:cpu_load", "estimate", **kw)


def sample_result() -> BenchResult:
    r = BenchResult(config=as_dict(RunConfig()), config_hash=config_hash(RunConfig()))
    r.load = window("load", 0.0, 3.0, 300.0)
    r.idle = window("idle", 3.0, 2.0, 100.0, cpu=2.0, ram=0.0)  # 51 W idle in all, 50 W GPU
    r.prefill = PrefillWindow(window("prefill", 5.0, 1.0, 60.0, cpu=0.0, ram=0.0), [0.1] * 10)  # 6 J per call
    r.repetitions = [
        RepetitionWindow(window("generate_1", 6.0, 2.0, 398.5), [1.0, 1.0]),  # 400 J, 40 tokens
        RepetitionWindow(window("generate_2", 8.0, 2.0, 438.5), [1.0, 1.0]),  # 440 J
        RepetitionWindow(window("generate_3", 10.0, 2.0, 5.0, problems=["gpu0 energy counter did not move"]), [1.0, 1.0]),
    ]
    r.carbon_intensity_g_per_kwh = 360.0
    r.pue = 1.5
    return r


def test_summary_arithmetic() -> None:
    timeline = [TimelineSample(t, 0, "gpu0", power_w=p) for t, p in [(5.5, 999.0), (7.0, 210.0), (9.0, 230.0)]]
    s = summarize(sample_result(), timeline, NEW, BATCH)
    # The rejected third window counts for speed but not for energy.
    assert s.measurement_repetitions == 2 and s.measurement_rejected_windows == 1
    assert s.measurement_generated_tokens == 80 and s.measurement_requests == 8
    assert s.energy_total_j == pytest.approx(840.0)
    assert s.energy_total_j == pytest.approx(s.energy_gpu_j + s.energy_cpu_j + s.energy_ram_j)
    assert s.energy_j_per_token == pytest.approx(840.0 / 80)
    assert s.energy_j_per_request == pytest.approx(105.0)
    assert s.energy_wh_per_1k_requests == pytest.approx(105.0 * 1000 / 3600)
    assert s.energy_idle_w == pytest.approx(51.0) and s.energy_gpu_idle_w == pytest.approx(50.0)
    assert s.energy_net_j == pytest.approx(840.0 - 51.0 * 4.0)
    assert s.energy_gpu_net_j == pytest.approx(837.0 - 50.0 * 4.0)
    assert s.energy_gpu_net_j_per_token == pytest.approx((837.0 - 200.0) / 80)
    assert s.energy_prefill_j == pytest.approx(6.0)
    # 210 J per call, minus 6 J prefill, over 2 rows x 9 decoded tokens.
    assert s.energy_decode_j_per_token == pytest.approx((210.0 - 6.0) / 18)
    assert s.energy_j_per_token_std == pytest.approx(((10.0 - 10.5) ** 2 + (11.0 - 10.5) ** 2) ** 0.5)
    assert s.measurement_energy_cv == pytest.approx(s.energy_j_per_token_std / 10.5)
    assert s.efficiency_tokens_per_kwh == pytest.approx(80 / (840.0 / 3.6e6))
    assert s.emissions_g_co2e == pytest.approx(840.0 / 3.6e6 * 1.5 * 360.0)
    assert s.power_gpu_mean_w == pytest.approx(837.0 / 4.0)
    assert s.power_gpu_max_w == 230.0  # the 999 W sample lies outside the generate windows
    assert s.throughput_tokens_per_s == pytest.approx(120 / 6.0)  # all three windows
    assert s.latency_ttft_s_p50 == pytest.approx(0.1)
    assert s.latency_tpot_ms_p50 == pytest.approx((1.0 - 0.1) / 9 * 1000)


def test_no_gpu_means_no_gpu_figures() -> None:
    r = sample_result()
    for m in [r.idle, *(w.measurement for w in r.repetitions)]:
        m.gpu_j, m.gpu_source, m.problems = {}, "none", []
    s = summarize(r, [], NEW, BATCH)
    assert s.energy_gpu_j is None and s.energy_gpu_net_j is None and s.power_gpu_mean_w is None
    assert s.energy_total_j == pytest.approx(4.5) and s.energy_idle_w == pytest.approx(1.0)


def test_result_round_trips_through_json(tmp_path: Path) -> None:
    r = sample_result()
    r.summary = summarize(r, [], NEW, BATCH)
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


def test_per_gpu_energy_is_logged_only_for_several_gpus() -> None:
    from mlflow_energy.bench.summary import gpu_j_by_device
    from mlflow_energy.tracking.names import per_gpu_energy_metrics

    r = sample_result()
    assert per_gpu_energy_metrics(gpu_j_by_device(r)) == {}  # one GPU: energy/gpu_j says it all
    for rep in r.repetitions:
        rep.measurement.gpu_j["1"] = 10.0
    by_device = gpu_j_by_device(r)
    assert by_device == {"0": pytest.approx(837.0), "1": pytest.approx(20.0)}  # the rejected window is left out
    assert per_gpu_energy_metrics(by_device) == {"energy/gpu0_j": pytest.approx(837.0), "energy/gpu1_j": pytest.approx(20.0)}
