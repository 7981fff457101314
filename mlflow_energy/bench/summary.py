"""From the raw windows of a BenchResult to the figures users compare (the Summary), and how far
they can be trusted (the Assessment)."""

from __future__ import annotations

from collections import defaultdict
from mlflow_energy.bench.result import Assessment, BenchResult, RepetitionWindow, Summary
from mlflow_energy.bench.stats import Interval, describe, percentile, positive_interval
from mlflow_energy.meter.host import JOULES_PER_KWH
from mlflow_energy.meter.measurement import EnergySource, Measurement
from mlflow_energy.meter.sampler import TimelineSample

# Figures that are positive by nature: noise can push an estimate of them below zero (a
# difference of two noisy quantities); they are then left out and named, never logged negative.
POSITIVE_BY_NATURE = (
    "energy_net_j", "energy_net_j_per_token", "energy_gpu_net_j", "energy_gpu_net_j_per_token",
    "energy_decode_j_per_token", "latency_tpot_ms_p50", "latency_tpot_ms_p90",
)  # fmt: skip


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def headline_domains(window: Measurement) -> tuple[list[str], str]:
    """(domains the headline counts, ``measured`` | ``estimate``): the measured domains, or
    every domain when none is measured."""
    sources = window.sources()
    measured = [d for d, source in sources.items() if EnergySource.is_measured(source)]
    return (measured, "measured") if measured else (list(sources), "estimate")


def _idle_power(idle: Measurement | None, domains: list[str]) -> tuple[float | None, float | None]:
    """(headline domains W, GPU W) while the model is loaded and nothing runs."""
    if idle is None or not idle.valid or idle.duration_s <= 0:
        return None, None
    gpu_w = idle.gpu_total_j / idle.duration_s if idle.gpu_j else None
    return idle.energy_j(domains) / idle.duration_s, gpu_w


def _gpu_max_w(timeline: list[TimelineSample], windows: list[Measurement]) -> float | None:
    """Highest total GPU power (summed over GPUs per sampling instant) inside the windows."""
    totals: dict[float, float] = defaultdict(float)
    for s in timeline:
        if s.power_w is not None and any(w.start_s <= s.t_s <= w.start_s + w.duration_s for w in windows):
            totals[s.t_s] += s.power_w
    return max(totals.values()) if totals else None


def per_window_j_per_token(valid: list[RepetitionWindow], domains: list[str], tokens_per_call: int) -> list[float]:
    """The headline J/token of each window: the samples behind its interval."""
    return [r.measurement.energy_j(domains) / (len(r.request_s) * tokens_per_call) for r in valid]


def j_per_token_interval(reps: list[RepetitionWindow], tokens_per_call: int) -> Interval | None:
    """The 95% interval of the headline J/token over the valid windows so far."""
    valid = [r for r in reps if r.measurement.valid]
    if len(valid) < 2:
        return None
    domains = headline_domains(valid[0].measurement)[0]
    total_j = sum(r.measurement.energy_j(domains) for r in valid)
    tokens = sum(len(r.request_s) for r in valid) * tokens_per_call
    return positive_interval(per_window_j_per_token(valid, domains, tokens_per_call), total_j / tokens)


def conclude(result: BenchResult, timeline: list[TimelineSample]) -> None:
    """Fills in the result's Summary and Assessment from its windows."""
    w = result.config["workload"]
    result.summary = summarize(result, timeline, w["new_tokens"], w["batch_size"])
    result.assessment = assess(result, result.summary, drop_below_noise_floor(result.summary))


def summarize(result: BenchResult, timeline: list[TimelineSample], new_tokens: int, batch_size: int) -> Summary:
    """Energy figures use the valid windows only (a rejected GPU reading drops its window)."""
    s = Summary()
    s.memory_gpu_peak_mb, s.memory_ram_peak_mb = result.gpu_peak_mb, result.ram_peak_mb
    s.emissions_intensity_g_per_kwh = result.carbon_intensity_g_per_kwh
    s.measurement_target_ci = result.config["bench"]["target_ci"]
    s.measurement_cooldown_s = result.cooldown_s
    valid = [r for r in result.repetitions if r.measurement.valid]
    # The first valid window says which domains exist: a rejected GPU reading leaves its window
    # without a GPU figure, and would make the estimate the headline.
    first = valid[0].measurement if valid else (result.load or result.idle)
    domains = headline_domains(first)[0] if first else []
    _phase_figures(s, result, domains)
    _latency_figures(s, result, new_tokens)
    if result.repetitions:
        _throughput_figures(s, result.repetitions, batch_size, new_tokens)
    s.measurement_rejected_windows = len(result.repetitions) - len(valid)
    s.measurement_repetitions = len(valid)
    if valid:
        _energy_figures(s, result, valid, domains, timeline, new_tokens, batch_size)
    return s


def _phase_figures(s: Summary, result: BenchResult, domains: list[str]) -> None:
    """Load, warm-up (compile), prefill and quality windows."""
    if result.load is not None:
        s.energy_load_j, s.latency_load_s = result.load.energy_j(domains), result.load.duration_s
    if result.warmup:
        s.energy_warmup_j = sum(w.energy_j(domains) for w in result.warmup)
        s.latency_warmup_s = sum(w.duration_s for w in result.warmup)
        if result.config["backend"]["name"] == "static_compile":
            s.energy_compile_j, s.latency_compile_s = result.warmup[0].energy_j(domains), result.warmup[0].duration_s
    if result.prefill is not None and result.prefill.call_s and result.prefill.measurement.valid:
        s.energy_prefill_j = result.prefill.measurement.energy_j(domains) / len(result.prefill.call_s)
    if result.quality is not None:
        q = result.quality
        s.quality_perplexity, s.quality_tokens = q.perplexity, q.tokens
        s.quality_eval_j, s.quality_eval_s = q.measurement.energy_j(domains), q.measurement.duration_s


def _latency_figures(s: Summary, result: BenchResult, new_tokens: int) -> None:
    if result.prefill is not None and result.prefill.call_s:
        calls = result.prefill.call_s
        s.latency_ttft_s_p50, s.latency_ttft_s_p90 = percentile(calls, 50), percentile(calls, 90)
    request_s = [t for r in result.repetitions for t in r.request_s]
    if not request_s:
        return
    s.latency_request_s_p50, s.latency_request_s_p90 = percentile(request_s, 50), percentile(request_s, 90)
    if new_tokens > 1 and s.latency_ttft_s_p50 is not None:
        tpot_ms = [(t - s.latency_ttft_s_p50) / (new_tokens - 1) * 1000 for t in request_s]
        s.latency_tpot_ms_p50, s.latency_tpot_ms_p90 = percentile(tpot_ms, 50), percentile(tpot_ms, 90)


def _throughput_figures(s: Summary, reps: list[RepetitionWindow], batch_size: int, new_tokens: int) -> None:
    """Every window counts for speed, a rejected energy reading included."""
    tokens_per_call = batch_size * new_tokens
    duration = sum(r.measurement.duration_s for r in reps)
    tokens = sum(len(r.request_s) for r in reps) * tokens_per_call
    s.throughput_tokens_per_s = tokens / duration
    s.throughput_requests_per_s = tokens / new_tokens / duration
    per_window = [len(r.request_s) * tokens_per_call / r.measurement.duration_s for r in reps]
    if len(reps) > 1:
        s.throughput_tokens_per_s_std = describe(per_window).std
    interval = positive_interval(per_window, s.throughput_tokens_per_s)
    if interval is not None:
        s.throughput_tokens_per_s_ci95_low, s.throughput_tokens_per_s_ci95_high = interval.low, interval.high


def _energy_figures(
    s: Summary, result: BenchResult, valid: list[RepetitionWindow], domains: list[str],
    timeline: list[TimelineSample], new_tokens: int, batch_size: int,
) -> None:  # fmt: skip
    windows = [r.measurement for r in valid]
    tokens_per_call = batch_size * new_tokens
    duration = sum(w.duration_s for w in windows)
    tokens = sum(len(r.request_s) for r in valid) * tokens_per_call
    requests = tokens // new_tokens
    s.measurement_duration_s, s.measurement_window_s = duration, duration / len(windows)
    s.measurement_generated_tokens, s.measurement_requests = tokens, requests
    _window_edge_figures(s, windows)

    has_gpu = any(w.gpu_j for w in windows)
    s.energy_gpu_j = sum(w.gpu_total_j for w in windows) if has_gpu else None
    s.energy_cpu_j = _sum([w.cpu_j for w in windows])
    s.energy_ram_j = _sum([w.ram_j for w in windows])
    s.energy_total_j = sum(w.energy_j(domains) for w in windows)
    s.energy_j_per_token = s.energy_total_j / tokens
    s.energy_j_per_request = s.energy_total_j / requests
    s.energy_wh_per_1k_requests = s.energy_j_per_request * 1000 / 3600
    s.efficiency_tokens_per_kwh = tokens / (s.energy_total_j / JOULES_PER_KWH)
    samples = per_window_j_per_token(valid, domains, tokens_per_call)
    spread = describe(samples)
    s.energy_j_per_token_std, s.measurement_energy_cv = spread.std, spread.cv
    interval = positive_interval(samples, s.energy_j_per_token)
    if interval is not None:
        s.energy_j_per_token_ci95_low, s.energy_j_per_token_ci95_high = interval.low, interval.high
        s.measurement_ci_relative = interval.relative_half_width
    if has_gpu:
        s.power_gpu_mean_w = s.energy_gpu_j / duration
        s.power_gpu_max_w = _gpu_max_w(timeline, windows)
    _net_figures(s, result, domains, duration, tokens)
    if s.energy_prefill_j is not None and new_tokens > 1:
        decode_j = s.energy_total_j / (tokens / tokens_per_call) - s.energy_prefill_j
        s.energy_decode_j_per_token = decode_j / (batch_size * (new_tokens - 1))
    _with_estimates_figures(s, result, windows, tokens, requests)


def _window_edge_figures(s: Summary, windows: list[Measurement]) -> None:
    """The counter-alignment waits, and the GPU temperature the measurement started at."""
    s.measurement_edge_wait_s = sum(w.edge_wait_s for w in windows) / len(windows)
    edge_idle_j = sum(w.edge_idle_j for w in windows)
    if edge_idle_j:
        s.measurement_edge_idle_share = edge_idle_j / (edge_idle_j + sum(w.gpu_total_j for w in windows))
    temperatures = windows[0].gpu_temperature_c.values()
    s.measurement_gpu_temperature_c = max(temperatures) if temperatures else None


def _net_figures(s: Summary, result: BenchResult, domains: list[str], duration: float, tokens: int) -> None:
    """Gross minus idle power x window time, for the headline and for the GPU."""
    s.energy_idle_w, s.energy_gpu_idle_w = _idle_power(result.idle, domains)
    if s.energy_idle_w is not None and s.energy_total_j is not None:
        s.energy_net_j = s.energy_total_j - s.energy_idle_w * duration
        s.energy_net_j_per_token = s.energy_net_j / tokens
    if s.energy_gpu_idle_w is not None and s.energy_gpu_j is not None:
        s.energy_gpu_net_j = s.energy_gpu_j - s.energy_gpu_idle_w * duration
        s.energy_gpu_net_j_per_token = s.energy_gpu_net_j / tokens


def _with_estimates_figures(
    s: Summary, result: BenchResult, windows: list[Measurement], tokens: int, requests: int
) -> None:
    """Every domain, CodeCarbon's estimates included, and the emissions (the accounting
    convention counts all the energy drawn)."""
    everything = sum(w.total_j for w in windows)
    if any(not EnergySource.is_measured(source) for source in windows[0].sources().values()):
        s.energy_with_estimates_total_j = everything
        s.energy_with_estimates_j_per_token = everything / tokens
        s.energy_with_estimates_j_per_request = everything / requests
        s.energy_with_estimates_wh_per_1k_requests = everything / requests * 1000 / 3600
    if result.carbon_intensity_g_per_kwh is not None:
        s.emissions_g_co2e = everything / JOULES_PER_KWH * result.pue * result.carbon_intensity_g_per_kwh
        s.emissions_g_co2e_per_1k_tokens = s.emissions_g_co2e / tokens * 1000


def drop_below_noise_floor(s: Summary) -> list[str]:
    """Leaves out the positive-by-nature figures that noise made zero or negative; returns
    their field names."""
    dropped = [name for name in POSITIVE_BY_NATURE if (value := getattr(s, name)) is not None and value <= 0]
    for name in dropped:
        setattr(s, name, None)
    return dropped


def assess(result: BenchResult, s: Summary, below_noise_floor: list[str]) -> Assessment:
    """The trust verdict: what the headline counts, whether the interval met its target, and
    the sentences a user must read before quoting the figures."""
    a = Assessment(below_noise_floor=below_noise_floor)
    valid = [r.measurement for r in result.repetitions if r.measurement.valid]
    if not valid:
        if result.status == "finished":
            a.warnings.append("no valid measured window: there is no energy figure to quote")
        return a
    sources = valid[0].sources()
    domains, a.headline = headline_domains(valid[0])
    a.headline_sources = [f"{d}:{sources[d]}" for d in domains]
    a.estimated_sources = [f"{d}:{src}" for d, src in sources.items() if d not in domains]
    if a.headline == "estimate":
        a.warnings.append(
            f"estimate: no measured energy source here ({', '.join(a.headline_sources)} are CodeCarbon models); "
            "compare these figures only with other estimates"
        )
    rel, target = s.measurement_ci_relative, s.measurement_target_ci
    if rel is None:
        a.warnings.append(f"{len(valid)} valid window: no interval; measure more windows")
    else:
        a.target_reached = target is not None and rel <= target
        if not a.target_reached:
            a.warnings.append(
                f"interval {rel:.1%} wide, target {target * 100:g}%: the machine is noisy; repeat the run or use "
                "sweep.replicates, and quote the interval (docs/metrics.md, 'Trust')"
            )
    if s.measurement_rejected_windows:
        a.warnings.append(f"{s.measurement_rejected_windows} window(s) rejected: {'; '.join(result.problems)[:300]}")
    return a


def gpu_j_by_device(result: BenchResult) -> dict[str, float]:
    """Gross joules per GPU (CUDA index) over the valid generate windows."""
    totals: dict[str, float] = defaultdict(float)
    for r in result.repetitions:
        if r.measurement.valid:
            for index, joules in r.measurement.gpu_j.items():
                totals[index] += joules
    return dict(totals)
