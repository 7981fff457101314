"""From the raw windows of a BenchResult to the figures users compare (the Summary)."""

from __future__ import annotations

from collections import defaultdict

from mlflow_energy.bench.result import BenchResult, Summary
from mlflow_energy.bench.stats import describe, percentile
from mlflow_energy.meter.host import JOULES_PER_KWH
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import TimelineSample


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _idle_power(idle: Measurement | None) -> tuple[float | None, float | None]:
    """(all domains W, GPU W) while the model is loaded and nothing runs."""
    if idle is None or not idle.valid or idle.duration_s <= 0:
        return None, None
    gpu_w = idle.gpu_total_j / idle.duration_s if idle.gpu_j else None
    return idle.total_j / idle.duration_s, gpu_w


def _gpu_max_w(timeline: list[TimelineSample], windows: list[Measurement]) -> float | None:
    """Highest total GPU power (summed over GPUs per sampling instant) inside the windows."""
    totals: dict[float, float] = defaultdict(float)
    for s in timeline:
        if s.power_w is not None and any(w.start_s <= s.t_s <= w.start_s + w.duration_s for w in windows):
            totals[s.t_s] += s.power_w
    return max(totals.values()) if totals else None


def summarize(result: BenchResult, timeline: list[TimelineSample], new_tokens: int, batch_size: int) -> Summary:
    """Energy figures use the valid windows only (a rejected GPU reading drops its window)."""
    s = Summary()
    if result.load is not None:
        s.energy_load_j = result.load.total_j
        s.latency_load_s = result.load.duration_s
    if result.warmup:
        s.energy_warmup_j = sum(w.total_j for w in result.warmup)
        s.latency_warmup_s = sum(w.duration_s for w in result.warmup)
        if result.config.get("backend", {}).get("name") == "static_compile":
            s.energy_compile_j, s.latency_compile_s = result.warmup[0].total_j, result.warmup[0].duration_s
    s.memory_gpu_peak_mb, s.memory_ram_peak_mb = result.gpu_peak_mb, result.ram_peak_mb
    s.emissions_intensity_g_per_kwh = result.carbon_intensity_g_per_kwh
    if result.quality is not None:
        q = result.quality
        s.quality_perplexity, s.quality_tokens = q.perplexity, q.tokens
        s.quality_eval_j, s.quality_eval_s = q.measurement.total_j, q.measurement.duration_s

    if result.prefill is not None and result.prefill.call_s:
        calls = result.prefill.call_s
        s.latency_ttft_s_p50, s.latency_ttft_s_p90 = percentile(calls, 50), percentile(calls, 90)
        if result.prefill.measurement.valid:
            s.energy_prefill_j = result.prefill.measurement.total_j / len(calls)

    reps = result.repetitions
    if not reps:
        return s
    request_s = [t for r in reps for t in r.request_s]
    s.latency_request_s_p50, s.latency_request_s_p90 = percentile(request_s, 50), percentile(request_s, 90)
    if new_tokens > 1 and s.latency_ttft_s_p50 is not None:
        tpot_ms = [(t - s.latency_ttft_s_p50) / (new_tokens - 1) * 1000 for t in request_s]
        s.latency_tpot_ms_p50, s.latency_tpot_ms_p90 = percentile(tpot_ms, 50), percentile(tpot_ms, 90)

    tokens_per_call = batch_size * new_tokens
    all_duration = sum(r.measurement.duration_s for r in reps)
    all_tokens = sum(len(r.request_s) for r in reps) * tokens_per_call
    s.throughput_tokens_per_s = all_tokens / all_duration
    s.throughput_requests_per_s = all_tokens / new_tokens / all_duration
    if len(reps) > 1:
        s.throughput_tokens_per_s_std = describe(
            [len(r.request_s) * tokens_per_call / r.measurement.duration_s for r in reps]
        ).std

    valid = [r for r in reps if r.measurement.valid]
    s.measurement_repetitions = len(valid)
    s.measurement_rejected_windows = len(reps) - len(valid)
    if not valid:
        return s
    windows = [r.measurement for r in valid]
    duration = sum(w.duration_s for w in windows)
    tokens = sum(len(r.request_s) for r in valid) * tokens_per_call
    requests = tokens // new_tokens
    s.measurement_duration_s = duration
    s.measurement_window_s = duration / len(windows)
    s.measurement_generated_tokens = tokens
    s.measurement_requests = requests

    has_gpu = any(w.gpu_j for w in windows)
    s.energy_gpu_j = sum(w.gpu_total_j for w in windows) if has_gpu else None
    s.energy_cpu_j = _sum([w.cpu_j for w in windows])
    s.energy_ram_j = _sum([w.ram_j for w in windows])
    s.energy_total_j = sum(w.total_j for w in windows)
    s.energy_j_per_token = s.energy_total_j / tokens
    s.energy_j_per_request = s.energy_total_j / requests
    s.energy_wh_per_1k_requests = s.energy_j_per_request * 1000 / 3600
    s.efficiency_tokens_per_kwh = tokens / (s.energy_total_j / JOULES_PER_KWH)
    per_window = describe([w.total_j / (len(r.request_s) * tokens_per_call) for w, r in zip(windows, valid)])
    s.energy_j_per_token_std = per_window.std
    s.energy_j_per_token_ci95_low, s.energy_j_per_token_ci95_high = per_window.ci95_low, per_window.ci95_high
    s.measurement_energy_cv = per_window.cv

    s.energy_idle_w, s.energy_gpu_idle_w = _idle_power(result.idle)
    if s.energy_idle_w is not None:
        s.energy_net_j = s.energy_total_j - s.energy_idle_w * duration
        s.energy_net_j_per_token = s.energy_net_j / tokens
    if has_gpu:
        s.power_gpu_mean_w = s.energy_gpu_j / duration
        s.power_gpu_max_w = _gpu_max_w(timeline, windows)
        if s.energy_gpu_idle_w is not None:
            s.energy_gpu_net_j = s.energy_gpu_j - s.energy_gpu_idle_w * duration
            s.energy_gpu_net_j_per_token = s.energy_gpu_net_j / tokens

    if s.energy_prefill_j is not None and new_tokens > 1:
        decode_j = s.energy_total_j / (tokens / tokens_per_call) - s.energy_prefill_j
        s.energy_decode_j_per_token = decode_j / (batch_size * (new_tokens - 1))
    if result.carbon_intensity_g_per_kwh is not None:
        s.emissions_g_co2e = s.energy_total_j / JOULES_PER_KWH * result.pue * result.carbon_intensity_g_per_kwh
        s.emissions_g_co2e_per_1k_tokens = s.emissions_g_co2e / tokens * 1000
    return s


def gpu_j_by_device(result: BenchResult) -> dict[str, float]:
    """Gross joules per GPU (CUDA index) over the valid generate windows."""
    totals: dict[str, float] = defaultdict(float)
    for r in result.repetitions:
        if r.measurement.valid:
            for index, joules in r.measurement.gpu_j.items():
                totals[index] += joules
    return dict(totals)
