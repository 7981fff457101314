"""From the raw windows of a BenchResult to the figures users compare (the Summary), and how far
they can be trusted (the Assessment)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflow_energy.bench.result import Assessment, BenchResult, RepetitionWindow, Summary, interval_label
from mlflow_energy.bench.stats import MIN_SAMPLES, Interval, describe, percentile, positive_interval, repeat_interval
from mlflow_energy.config import ServingConfig, WorkloadConfig
from mlflow_energy.inference.load_generator import ERROR, WARMUP, RequestRecord
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


def idle_power(idle: Measurement | None, domains: list[str]) -> tuple[float | None, float | None]:
    """(headline domains W, GPU W) while the model is loaded and nothing runs."""
    if idle is None or not idle.valid or idle.duration_s <= 0:
        return None, None
    gpu_w = idle.gpu_total_j / idle.duration_s if idle.gpu_j else None
    return idle.energy_j(domains) / idle.duration_s, gpu_w


def _gpu_max_w(timeline: list[TimelineSample], windows: list[Measurement]) -> float | None:
    """Highest total GPU power (summed over GPUs per sampling instant) inside the windows."""
    totals: dict[float, float] = defaultdict(float)
    for s in timeline:
        if s.power_w is not None and any(w.start_s <= s.t_s <= w.end_s for w in windows):
            totals[s.t_s] += s.power_w
    return max(totals.values()) if totals else None


def per_window_j_per_token(valid: list[RepetitionWindow], domains: list[str], tokens_per_call: int) -> list[float]:
    """The headline J/token of each window: the samples behind its interval."""
    return [r.measurement.energy_j(domains) / (len(r.request_s) * tokens_per_call) for r in valid]


def by_process(reps: list[RepetitionWindow]) -> list[list[RepetitionWindow]]:
    """The windows of each benchmark process that measured some, in process order."""
    groups: dict[int, list[RepetitionWindow]] = {}
    for r in reps:
        groups.setdefault(r.process, []).append(r)
    return [groups[p] for p in sorted(groups)]


def process_interval(reps: list[RepetitionWindow], value: float,
                     figure: Callable[[list[RepetitionWindow]], float]) -> Interval | None:  # fmt: skip
    """Where a repeat of the run lands, from ``figure`` of each benchmark process's windows; None
    with fewer than 3 processes (then the windows' own interval is stated)."""
    processes = by_process(reps)
    if len(processes) < MIN_SAMPLES:
        return None
    return repeat_interval([figure(windows) for windows in processes], value)


def j_per_token_interval(reps: list[RepetitionWindow], tokens_per_call: int) -> Interval | None:
    """The 95% interval of the headline J/token over the valid windows so far."""
    valid = [r for r in reps if r.measurement.valid]
    if len(valid) < MIN_SAMPLES:
        return None
    domains = headline_domains(valid[0].measurement)[0]
    total_j = sum(r.measurement.energy_j(domains) for r in valid)
    tokens = sum(len(r.request_s) for r in valid) * tokens_per_call
    return positive_interval(per_window_j_per_token(valid, domains, tokens_per_call), total_j / tokens)


Figures = dict[str, Any]  # Summary field name -> value: what one section contributes


@dataclass(frozen=True)
class _Generated:
    """What the valid generate windows hold: the denominators of every energy figure."""

    windows: list[Measurement]
    duration_s: float
    tokens: float  # whole in batch runs; a serving run counts each request's share inside the windows
    requests: int
    calls: int


def conclude(result: BenchResult, timeline: list[TimelineSample]) -> None:
    """Fills in the result's Summary and Assessment from its windows."""
    result.summary = summarize(result, timeline)
    result.assessment = assess(result, result.summary, drop_below_noise_floor(result.summary))


def summarize(result: BenchResult, timeline: list[TimelineSample]) -> Summary:
    """The serving run's figures, or the batch run's."""
    return _summarize_serving(result, timeline) if result.serving is not None else _summarize_batch(result, timeline)


def _summarize_batch(result: BenchResult, timeline: list[TimelineSample]) -> Summary:
    """Each section from the windows it needs. Energy figures use the valid windows only (a
    rejected GPU reading drops its window); speed counts every window."""
    workload = result.config.workload
    valid = [r for r in result.repetitions if r.measurement.valid]
    # The first valid window says which domains exist: a rejected GPU reading leaves its window
    # without a GPU figure, and would make the estimate the headline.
    first = valid[0].measurement if valid else (result.load or result.idle)
    domains = headline_domains(first)[0] if first else []
    figures: Figures = {
        "memory_gpu_peak_mb": result.gpu_peak_mb,
        "memory_ram_peak_mb": result.ram_peak_mb,
        "emissions_intensity_g_per_kwh": result.carbon_intensity_g_per_kwh,
        "measurement_target_ci": result.config.bench.target_ci,
        "measurement_cooldown_s": result.cooldown_s,
        "measurement_rejected_windows": len(result.repetitions) - len(valid),
        "measurement_repetitions": len(valid),
        "measurement_processes": len(by_process(valid)) or None,  # those the J/token interval counts
        **_phase_figures(result, domains),
        **_latency_figures(result, workload.new_tokens),
        **_throughput_figures(result.repetitions, workload.batch_size, workload.new_tokens),
    }
    if valid:
        tokens_per_call = workload.batch_size * workload.new_tokens
        calls = sum(len(r.request_s) for r in valid)
        windows = [r.measurement for r in valid]
        done = _Generated(windows, sum(w.duration_s for w in windows), calls * tokens_per_call,
                          calls * workload.batch_size, calls)  # fmt: skip
        figures |= _generated_figures(done, domains, per_window_j_per_token(valid, domains, tokens_per_call))
        figures |= _process_interval(valid, domains, tokens_per_call, figures["energy_j_per_token"])
        figures |= _window_edge_figures(windows)
        figures |= _gpu_power_figures(done, figures["energy_gpu_j"], timeline)
        figures |= _net_figures(result.idle, domains, done, figures["energy_total_j"], figures["energy_gpu_j"])
        figures |= _decode_figures(done, figures["energy_total_j"], figures.get("energy_prefill_j"), workload)
        figures |= emissions_figures(windows, done.tokens, result.carbon_intensity_g_per_kwh, result.pue)
    return Summary(**figures)


def _summarize_serving(result: BenchResult, timeline: list[TimelineSample]) -> Summary:
    """Energy over the valid steady-state windows: per output token generated inside them (each
    request's tokens spread over its time at the server), per request completed inside them;
    latencies of every counted request; intervals from each window's own figures."""
    serving = result.serving
    assert serving is not None, "called for serving runs"
    valid = [m for m in serving.windows if m.valid]
    first = valid[0] if valid else (result.load or result.idle)
    domains = headline_domains(first)[0] if first else []
    counted = [r for r in serving.requests if r.window is not None]
    after_warmup = [r for r in serving.requests if r.phase != WARMUP]
    # Output tokens generated inside each window (valid or not): speed counts them all, energy the valid ones.
    tokens = [sum(r.output_tokens_between(m.start_s, m.end_s) for r in serving.requests)
              for m in serving.windows]  # fmt: skip
    figures: Figures = {
        "emissions_intensity_g_per_kwh": result.carbon_intensity_g_per_kwh,
        "measurement_target_ci": result.config.bench.target_ci,
        "measurement_rejected_windows": len(serving.windows) - len(valid),
        "measurement_repetitions": len(valid),
        "measurement_errors": sum(r.status == ERROR for r in after_warmup),
        "measurement_ramp_up_s": serving.ramp_up_s,
        "measurement_drain_s": serving.drain_s,
        **_phase_figures(result, domains),
        **_request_latency_figures(counted),
        **_serving_throughput_figures(sum(tokens), counted, serving.windows, result.config.serving),
    }
    valid_tokens = [t for t, m in zip(tokens, serving.windows, strict=True) if m.valid]
    ended = [sum(r.window == i for r in counted) for i, m in enumerate(serving.windows) if m.valid]
    if valid and sum(valid_tokens) > 0:
        done = _Generated(valid, sum(w.duration_s for w in valid), sum(valid_tokens), sum(ended), sum(ended))
        joules = [m.energy_j(domains) for m in valid]
        figures |= _generated_figures(done, domains, [j / t for j, t in zip(joules, valid_tokens, strict=True)]
                                      if all(valid_tokens) else [])  # fmt: skip
        per_request = positive_interval([j / n for j, n in zip(joules, ended, strict=True)] if all(ended) else [],
                                        figures.get("energy_j_per_request"))  # fmt: skip
        if per_request is not None:
            figures |= {"energy_j_per_request_ci95_low": per_request.low,
                        "energy_j_per_request_ci95_high": per_request.high}  # fmt: skip
        spans = [(m.start_s, m.end_s) for m in valid]
        prompt_tokens = sum(r.prompt_tokens or 0 for r in serving.requests for span in spans
                            if r.prefilled_between(*span))  # fmt: skip
        figures["measurement_prompt_tokens"] = prompt_tokens
        figures["energy_j_per_processed_token"] = figures["energy_total_j"] / (done.tokens + prompt_tokens)
        figures |= _window_edge_figures(valid)
        figures |= _gpu_power_figures(done, figures["energy_gpu_j"], timeline)
        figures |= _net_figures(result.idle, domains, done, figures["energy_total_j"], figures["energy_gpu_j"])
        figures |= emissions_figures(valid, done.tokens, result.carbon_intensity_g_per_kwh, result.pue)
    return Summary(**figures)


def _request_latency_figures(counted: list[RequestRecord]) -> Figures:
    """p50, p90 and p99 of time to first token, inter-token latency and end-to-end latency."""
    f: Figures = {}
    series = {"latency_ttft_s": [r.ttft_s for r in counted], "latency_tpot_ms": [r.tpot_ms for r in counted],
              "latency_request_s": [r.latency_s for r in counted]}  # fmt: skip
    for name, values in series.items():
        present = [v for v in values if v is not None]
        if present:
            f |= {f"{name}_p{q}": percentile(present, q) for q in (50, 90, 99)}
    return f


def _serving_throughput_figures(tokens: float, counted: list[RequestRecord], windows: list[Measurement],
                                slo: ServingConfig) -> Figures:  # fmt: skip
    """``tokens`` generated and requests completed per second of window time (every window, a
    rejected energy reading included), and goodput: the requests within every ``serving.slo_*``
    bound."""
    duration = sum(w.duration_s for w in windows)
    if duration <= 0:
        return {}
    good = [r for r in counted if meets_slo(r, slo)]
    return {"throughput_tokens_per_s": tokens / duration, "throughput_requests_per_s": len(counted) / duration,
            "throughput_goodput_requests_per_s": len(good) / duration}  # fmt: skip


def meets_slo(r: RequestRecord, slo: ServingConfig) -> bool:
    """Within every bound that is set (a bound on a figure the request lacks is not met)."""
    bounds = ((slo.slo_ttft_s, r.ttft_s), (slo.slo_tpot_ms, r.tpot_ms), (slo.slo_request_s, r.latency_s))
    return all(bound is None or (value is not None and value <= bound) for bound, value in bounds)


def _phase_figures(result: BenchResult, domains: list[str]) -> Figures:
    """Load, warm-up (compile), prefill and quality windows."""
    f: Figures = {}
    if result.load is not None:
        f |= {"energy_load_j": result.load.energy_j(domains), "latency_load_s": result.load.duration_s}
    if result.warmup:
        f["energy_warmup_j"] = sum(w.energy_j(domains) for w in result.warmup)
        f["latency_warmup_s"] = sum(w.duration_s for w in result.warmup)
        if result.config.backend.name == "static_compile":  # the first warm-up call compiles
            first = result.warmup[0]
            f |= {"energy_compile_j": first.energy_j(domains), "latency_compile_s": first.duration_s}
    if result.prefill is not None and result.prefill.call_s and result.prefill.measurement.valid:
        f["energy_prefill_j"] = result.prefill.measurement.energy_j(domains) / len(result.prefill.call_s)
    if result.quality is not None:
        q = result.quality
        f |= {"quality_perplexity": q.perplexity, "quality_tokens": q.tokens,
              "quality_eval_j": q.measurement.energy_j(domains),
              "quality_eval_s": q.measurement.duration_s}  # fmt: skip
    return f


def _latency_figures(result: BenchResult, new_tokens: int) -> Figures:
    f: Figures = {}
    ttft_p50 = None
    if result.prefill is not None and result.prefill.call_s:
        calls = result.prefill.call_s
        ttft_p50 = percentile(calls, 50)
        f |= {"latency_ttft_s_p50": ttft_p50, "latency_ttft_s_p90": percentile(calls, 90)}
    request_s = [t for r in result.repetitions for t in r.request_s]
    if not request_s:
        return f
    f |= {"latency_request_s_p50": percentile(request_s, 50), "latency_request_s_p90": percentile(request_s, 90)}
    if new_tokens > 1 and ttft_p50 is not None:
        tpot_ms = [(t - ttft_p50) / (new_tokens - 1) * 1000 for t in request_s]
        f |= {"latency_tpot_ms_p50": percentile(tpot_ms, 50), "latency_tpot_ms_p90": percentile(tpot_ms, 90)}
    return f


def _process_interval(valid: list[RepetitionWindow], domains: list[str], tokens_per_call: int,
                      value: float | None) -> Figures:  # fmt: skip
    """From 3 benchmark processes on, the J/token interval is where a repeat of the run lands."""

    def j_per_token(windows: list[RepetitionWindow]) -> float:
        calls = sum(len(r.request_s) for r in windows)
        return sum(r.measurement.energy_j(domains) for r in windows) / (calls * tokens_per_call)

    interval = process_interval(valid, value, j_per_token) if value is not None else None
    if interval is None:
        return {}
    return {"energy_j_per_token_ci95_low": interval.low, "energy_j_per_token_ci95_high": interval.high,
            "measurement_ci_relative": interval.relative_half_width}  # fmt: skip


def _throughput_figures(reps: list[RepetitionWindow], batch_size: int, new_tokens: int) -> Figures:
    """Every window counts for speed, a rejected energy reading included."""
    if not reps:
        return {}
    tokens_per_call = batch_size * new_tokens
    duration = sum(r.measurement.duration_s for r in reps)
    tokens = sum(len(r.request_s) for r in reps) * tokens_per_call
    per_window = [len(r.request_s) * tokens_per_call / r.measurement.duration_s for r in reps]
    f: Figures = {"throughput_tokens_per_s": tokens / duration,
                  "throughput_requests_per_s": tokens / new_tokens / duration}  # fmt: skip
    if len(reps) > 1:
        f["throughput_tokens_per_s_std"] = describe(per_window).std

    def tokens_per_s(windows: list[RepetitionWindow]) -> float:
        return sum(len(r.request_s) for r in windows) * tokens_per_call / sum(r.measurement.duration_s for r in windows)

    several = len(by_process(reps)) >= MIN_SAMPLES
    interval = (process_interval(reps, f["throughput_tokens_per_s"], tokens_per_s) if several
                else positive_interval(per_window, f["throughput_tokens_per_s"]))  # fmt: skip
    if interval is not None:
        f |= {"throughput_tokens_per_s_ci95_low": interval.low, "throughput_tokens_per_s_ci95_high": interval.high}
    return f


def energy_figures(windows: list[Measurement], domains: list[str], tokens: float | None,
                   requests: int | None) -> Figures:  # fmt: skip
    """Gross energy of ``windows`` over the headline ``domains``, per domain, per token and per
    request where they are counted, and the same with CodeCarbon's estimates added where a domain
    is estimated. Shared by the benchmark, ``track()`` blocks and the energy evaluator."""
    total_j = sum(w.energy_j(domains) for w in windows)
    everything = sum(w.total_j for w in windows)
    estimated = any(not EnergySource.is_measured(source) for source in windows[0].sources().values())
    f: Figures = {
        "energy_total_j": total_j,
        "energy_gpu_j": sum(w.gpu_total_j for w in windows) if any(w.gpu_j for w in windows) else None,
        "energy_cpu_j": _sum([w.cpu_j for w in windows]),
        "energy_ram_j": _sum([w.ram_j for w in windows]),
        "energy_with_estimates_total_j": everything if estimated else None,
    }
    if tokens:
        f |= {"energy_j_per_token": total_j / tokens,
              "efficiency_tokens_per_kwh": tokens / (total_j / JOULES_PER_KWH) if total_j > 0 else None,
              "energy_with_estimates_j_per_token": everything / tokens if estimated else None}  # fmt: skip
    if requests:
        f |= {"energy_j_per_request": total_j / requests, "energy_wh_per_1k_requests": total_j / requests / 3.6}
        if estimated:
            f |= {"energy_with_estimates_j_per_request": everything / requests,
                  "energy_with_estimates_wh_per_1k_requests": everything / requests / 3.6}  # fmt: skip
    return f


def emissions_figures(windows: list[Measurement], tokens: float | None, intensity_g_per_kwh: float | None,
                      pue: float) -> Figures:  # fmt: skip
    """Emissions count every domain, CodeCarbon's estimates included (the accounting convention)."""
    if intensity_g_per_kwh is None:
        return {}
    grams = sum(w.total_j for w in windows) / JOULES_PER_KWH * pue * intensity_g_per_kwh
    return {"emissions_g_co2e": grams, "emissions_g_co2e_per_1k_tokens": grams / tokens * 1000 if tokens else None}


def _generated_figures(done: _Generated, domains: list[str], samples: list[float]) -> Figures:
    """The generate windows: their energy figures, and the J/token interval over ``samples``
    (each window's J/token)."""
    spread = describe(samples) if samples else None
    f: Figures = {
        "measurement_duration_s": done.duration_s,
        "measurement_window_s": done.duration_s / len(done.windows),
        "measurement_generated_tokens": round(done.tokens),
        "measurement_requests": done.requests,
        "measurement_energy_cv": spread.cv if spread else None,
        "energy_j_per_token_std": spread.std if spread else None,
        **energy_figures(done.windows, domains, done.tokens, done.requests),
    }
    interval = positive_interval(samples, f["energy_j_per_token"])
    if interval is not None:
        f |= {"energy_j_per_token_ci95_low": interval.low, "energy_j_per_token_ci95_high": interval.high,
              "measurement_ci_relative": interval.relative_half_width}  # fmt: skip
    return f


def _window_edge_figures(windows: list[Measurement]) -> Figures:
    """The counter-alignment waits, and the GPU temperature the measurement started at."""
    edge_idle_j = sum(w.edge_idle_j for w in windows)
    temperatures = windows[0].gpu_temperature_c.values()
    return {
        "measurement_edge_wait_s": sum(w.edge_wait_s for w in windows) / len(windows),
        "measurement_edge_idle_share": (
            edge_idle_j / (edge_idle_j + sum(w.gpu_total_j for w in windows)) if edge_idle_j else None
        ),
        "measurement_gpu_temperature_c": max(temperatures) if temperatures else None,
    }


def _gpu_power_figures(done: _Generated, gpu_j: float | None, timeline: list[TimelineSample]) -> Figures:
    if gpu_j is None:
        return {}
    return {"power_gpu_mean_w": gpu_j / done.duration_s, "power_gpu_max_w": _gpu_max_w(timeline, done.windows)}


def _net_figures(
    idle: Measurement | None, domains: list[str], done: _Generated, total_j: float, gpu_j: float | None
) -> Figures:
    """Gross minus idle power x window time, for the headline and for the GPU."""
    idle_w, gpu_idle_w = idle_power(idle, domains)
    f: Figures = {"energy_idle_w": idle_w, "energy_gpu_idle_w": gpu_idle_w}
    if idle_w is not None:
        net_j = total_j - idle_w * done.duration_s
        f |= {"energy_net_j": net_j, "energy_net_j_per_token": net_j / done.tokens}
    if gpu_idle_w is not None and gpu_j is not None:
        gpu_net_j = gpu_j - gpu_idle_w * done.duration_s
        f |= {"energy_gpu_net_j": gpu_net_j, "energy_gpu_net_j_per_token": gpu_net_j / done.tokens}
    return f


def _decode_figures(done: _Generated, total_j: float, prefill_j: float | None, workload: WorkloadConfig) -> Figures:
    """A call's energy less its prefill, per decoded token (every token after the first)."""
    if prefill_j is None or workload.new_tokens < 2:
        return {}
    decode_j = total_j / done.calls - prefill_j
    return {"energy_decode_j_per_token": decode_j / (workload.batch_size * (workload.new_tokens - 1))}


def drop_below_noise_floor(s: Summary) -> list[str]:
    """Leaves out the positive-by-nature figures that noise made zero or negative; returns
    their field names."""
    dropped = [name for name in POSITIVE_BY_NATURE if (value := getattr(s, name)) is not None and value <= 0]
    for name in dropped:
        setattr(s, name, None)
    return dropped


def estimate_warning(labels: list[str]) -> str:
    """The sentence that opens the trust verdict of a figure with no measured source."""
    warning = f"estimate: no measured energy source here ({', '.join(labels)} are CodeCarbon models); "
    if any(label.endswith(":cpu_load") for label in labels):
        # CodeCarbon scales the CPU's TDP by the whole machine's load, not this process's share.
        return warning + ("the CPU estimate follows the whole machine's load, so anything else running changes it: "
                          "use these figures only to compare runs made on an otherwise idle machine")
    return warning + "compare these figures only with other estimates"


def assess(result: BenchResult, s: Summary, below_noise_floor: list[str]) -> Assessment:
    """The trust verdict: what the headline counts, whether the interval met its target, and
    the sentences a user must read before quoting the figures."""
    a = Assessment(below_noise_floor=below_noise_floor, interval=interval_label(s.measurement_processes or 1))
    valid = [m for m in result.headline_windows() if m.valid]
    if not valid:  # finished with every reading rejected, or failed before the first window
        a.warnings.append("no valid measured window: there is no energy figure to quote")
        return a
    sources = valid[0].sources()
    domains, a.headline = headline_domains(valid[0])
    a.headline_sources = [f"{d}:{sources[d]}" for d in domains]
    a.estimated_sources = [f"{d}:{src}" for d, src in sources.items() if d not in domains]
    if a.headline == "estimate":
        a.warnings.append(estimate_warning(a.headline_sources))
    # The target the windows aimed for (summarize records the same value as measurement_target_ci).
    rel, target = s.measurement_ci_relative, result.config.bench.target_ci
    if rel is None and result.serving is not None:
        a.warnings.append("no interval: a steady-state window generated no token, or there was only one; raise "
                          "serving.window_s or serving.duration_s")  # fmt: skip
    elif rel is None:
        a.warnings.append(f"{len(valid)} valid window(s): an interval needs at least {MIN_SAMPLES}; measure more "
                          "windows (raise bench.max_duration_s)")
    elif a.headline == "estimate" and result.serving is None:
        # Not chased (bench/protocol.py, bench/isolation.py): the interval is the estimate's own spread.
        a.warnings.append(f"the estimate is not refined to the {target * 100:g}% asked: more windows or processes "
                          "repeat a model, not a measurement, so each benchmark process stopped at the fewest windows "
                          "(and the run after bench.estimate_processes)")  # fmt: skip
    else:
        a.target_reached = rel <= target
        if not a.target_reached:
            noisy = ("the load or the machine is noisy; lengthen serving.window_s or serving.duration_s, or use"
                     if result.serving is not None
                     else "the benchmark processes disagree: the machine is too noisy for that precision; use more "
                     "bench.processes or" if (s.measurement_processes or 1) >= MIN_SAMPLES
                     else "the machine is noisy; repeat the run or use")  # fmt: skip
            a.warnings.append(
                f"interval {rel:.1%} wide, target {target * 100:g}%: {noisy} sweep.replicates, and quote the "
                "interval (docs/reference/metrics.md, 'Trust')"
            )
    if result.serving is not None:
        a.warnings += _serving_warnings(result)
    if s.measurement_rejected_windows:
        a.warnings.append(f"{s.measurement_rejected_windows} window(s) rejected: {'; '.join(result.problems)[:300]}")
    return a


def _serving_warnings(result: BenchResult) -> list[str]:
    """Requests that failed, and fixed-length requests the server ended early."""
    config, serving = result.config.serving, result.serving
    assert serving is not None, "called for serving runs"
    warnings = []
    errors = [r for r in serving.requests if r.phase != WARMUP and r.status == ERROR]
    if errors:
        warnings.append(f"{len(errors)} request(s) failed (not counted); the first error: {errors[0].error}")
    counted = [r for r in serving.requests if r.window is not None and r.max_tokens is not None]
    short = [r for r in counted if (r.completion_tokens or 0) < (r.max_tokens or 0)]
    if config.output_length == "fixed" and short:
        warnings.append(f"{len(short)} counted request(s) ended before the max_tokens they asked for: the server did "
                        "not honour the fixed output length (min_tokens, ignore_eos)")  # fmt: skip
    return warnings


def gpu_j_by_device(result: BenchResult) -> dict[str, float]:
    """Gross joules per GPU (CUDA index) over the valid generate windows."""
    totals: dict[str, float] = defaultdict(float)
    for m in result.headline_windows():
        if m.valid:
            for index, joules in m.gpu_j.items():
                totals[index] += joules
    return dict(totals)
