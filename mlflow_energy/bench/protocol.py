"""The measurement protocol, run inside the isolated child process, one function per phase.

load (window) -> cool-down (GPU) -> idle baseline (window) -> warm-up identical to the
measured call -> prefill window (repeated forward passes) -> generate windows, repeated until
the J/token interval is tight or the time cap is reached -> quality. The partial result is
written after every phase so a crash keeps what was measured.
"""

from __future__ import annotations

import logging
import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.adapters.codecarbon import grid_intensity_g_per_kwh
from mlflow_energy.bench import environment, stages
from mlflow_energy.bench.result import (
    CODECARBON_DIR,
    TIMELINE_FILE,
    BenchResult,
    PrefillWindow,
    QualityWindow,
    RepetitionWindow,
    Status,
)
from mlflow_energy.bench.run_state import Run, cool_down, measure_idle
from mlflow_energy.bench.serving import measure_serving, served_gpus
from mlflow_energy.bench.summary import conclude, headline_domains, j_per_token_interval
from mlflow_energy.config import BenchConfig, RunConfig, config_hash, point_hash
from mlflow_energy.inference import generation
from mlflow_energy.inference.hardware_support import resolve_device
from mlflow_energy.inference.models import input_device, load_model, load_tokenizer, parameter_count, resolve_model
from mlflow_energy.inference.prompts import make_batch
from mlflow_energy.inference.quality import heldout_text, perplexity
from mlflow_energy.inference.quantization import int8_linear_count
from mlflow_energy.meter.energy_meter import EnergyMeter, open_meter
from mlflow_energy.meter.sampler import write_timeline_csv

log = logging.getLogger("mlflow_energy.bench")


def _timed(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def _calls_for(min_window_s: float, one_call_s: float) -> int:
    """Calls per window so the window lasts at least ``min_window_s`` (counter resolution)."""
    return max(1, math.ceil(min_window_s / max(one_call_s, 1e-6)))


def _meter_for(device: str, config: RunConfig, out_dir: Path) -> tuple[EnergyMeter, Callable[[], None]]:
    """The GPUs the model runs on are measured (every visible one when sharded, else its own):
    an idle neighbour would add its idle draw to the figures. CPU and RAM always, through
    CodeCarbon."""
    import torch

    gpus: Sequence[int] | str
    sync: Callable[[], None] = lambda: None  # noqa: E731
    if config.scenario == "serving":  # the server's process does the CUDA work: nothing to synchronise here
        gpus = served_gpus(config, device) or "no GPU serves this run"
    elif device.startswith("cuda"):
        gpus = range(torch.cuda.device_count()) if config.model.device_map else [int(device.partition(":")[2] or 0)]
        sync = torch.cuda.synchronize
    else:
        gpus = "the run uses the CPU, so no GPU is measured"
    carbon, bench = config.carbon, config.bench
    meter = open_meter(out_dir / CODECARBON_DIR, carbon.country_iso_code, carbon.region, gpus, sync,
                       bench.sample_period_s, bench.align_to_counter)  # fmt: skip
    return meter, sync


@dataclass
class _Work:
    """The loaded model and the exact calls that are measured."""

    model: Any
    tokenizer: Any
    generate: Callable[[], Any]
    prefill: Callable[[], Any]


def run_protocol(config: RunConfig, out_dir: Path, save: Callable[[BenchResult], object]) -> BenchResult:
    result = BenchResult(config, config_hash(config), point_hash(config), pue=config.carbon.pue)
    device = resolve_device(config.device)
    result.device = device
    result.tokens_per_call = config.workload.batch_size * config.workload.new_tokens
    result.carbon_intensity_g_per_kwh = grid_intensity_g_per_kwh(config.carbon.country_iso_code, config.carbon.region)
    meter, sync = _meter_for(device, config, out_dir)
    run = Run(config, result, meter, sync, save, out_dir, stages.StageClock(result.stages_s, stages.START,
                                                                           stages.process_age_s()))  # fmt: skip
    try:
        result.environment = environment.collect(meter)
        if config.scenario == "serving":
            measure_serving(run)
        else:
            _measure_batch(run, device)
        result.status = Status.FINISHED
        result.phase = "done"
    except BaseException as exc:
        result.status = Status.FAILED
        result.error = f"{type(exc).__name__} during {result.phase}: {exc}"
        raise
    finally:
        run.clock.enter(stages.END)  # closes the last phase's stage
        meter.close()
        timeline = meter.timeline()
        write_timeline_csv(timeline, out_dir / TIMELINE_FILE)
        result.problems = [p for _, m in result.windows() for p in m.problems]
        conclude(result, timeline)
        result.ended_ms = int(time.time() * 1000)
        run.clock.enter(stages.END)  # the last stage closed: the saved result holds its time
        save(result)
    return result


def _measure_batch(run: Run, device: str) -> None:
    work = _load(run, device)
    cool_down(run)
    measure_idle(run)
    _warm_up(run, work)
    _prefill(run, work)
    _generate(run, work)
    _record_peaks(run, device)
    if run.config.quality.enabled:  # after the energy windows, never inside them
        _quality(run, work)


def _load(run: Run, device: str) -> _Work:
    config, result = run.config, run.result
    run.enter("load", stages.LOAD)
    source = resolve_model(config.model)
    with run.meter.window("load") as window:
        tokenizer = load_tokenizer(source, config.model)
        loaded = load_model(source, config.model, device)
    model = loaded.model
    result.load = load = window.measured()
    result.model_parameters = parameter_count(model)
    result.pruning = loaded.pruning
    if config.model.quantization != "none":
        result.int8_layers = int8_linear_count(model)
    log.info("loaded %s (%.1f M parameters) on %s in %.1f s", config.model.name,
             result.model_parameters / 1e6, device, load.duration_s)  # fmt: skip
    batch = make_batch(config.workload, tokenizer, model.config.vocab_size, input_device(model), config.model.seed)
    gen_config = generation.fixed_length_config(
        model, tokenizer, config.workload.new_tokens, config.backend.cache,
        compiled=config.backend.name == "static_compile",
    )  # fmt: skip
    return _Work(model, tokenizer, lambda: generation.generate(model, batch, gen_config),
                 lambda: generation.prefill(model, batch))  # fmt: skip


def _warm_up(run: Run, work: _Work) -> None:
    n = run.config.bench.warmup_runs
    for i in range(n):
        run.enter(f"warm-up {i + 1}/{n}", stages.WARMUP)
        with run.meter.window(f"warmup_{i + 1}") as window:
            work.generate()
        run.result.warmup.append(window.measured())


def _prefill(run: Run, work: _Work) -> None:
    """Prefill passes repeated inside one window long enough for the counter; the warm-up
    generate already ran this prefill shape, and one more pass times it."""
    calls = _calls_for(run.config.bench.min_window_s, _timed(work.prefill, run.sync))
    run.enter(f"prefill window ({calls} forward passes)", stages.PREFILL)
    call_s: list[float] = []
    with run.meter.window("prefill") as window:
        for _ in range(calls):
            call_s.append(_timed(work.prefill, run.sync))
    run.result.prefill = PrefillWindow(window.measured(), call_s)


def _generate(run: Run, work: _Work) -> None:
    calls = _calls_for(run.config.bench.min_window_s, run.result.warmup[-1].duration_s)

    def measure(k: int, status: str) -> RepetitionWindow:
        run.enter(f"repetition {k} ({calls} calls; {status})", stages.WINDOWS, repeats=True)
        request_s: list[float] = []
        with run.meter.window(f"generate_{k}") as window:
            for _ in range(calls):
                request_s.append(_timed(work.generate, run.sync))
        return RepetitionWindow(window.measured(), request_s)

    repeat_until_tight(measure, run.result.repetitions, run.result.tokens_per_call or 1, run.config.bench)


def repeat_until_tight(
    measure: Callable[[int, str], RepetitionWindow], windows: list[RepetitionWindow], tokens_per_call: int,
    bench: BenchConfig,
) -> None:  # fmt: skip
    """Appends generate windows until ``bench.min_repetitions`` and ``bench.min_duration_s``
    hold and the 95% interval of the headline J/token is within ``bench.target_ci`` of it,
    or ``bench.max_duration_s`` of windows is reached (the minimums still apply). A headline of
    CodeCarbon's estimates stops at the minimums: more windows cannot make a model of the
    machine's load more precise."""
    measured_s, status = 0.0, "no interval yet"
    while True:
        window = measure(len(windows) + 1, status)
        windows.append(window)
        measured_s += window.measurement.duration_s
        interval = j_per_token_interval(windows, tokens_per_call)
        if interval is not None:
            status = f"interval {interval.relative_half_width:.1%}, target {bench.target_ci * 100:g}%"
        status += f", {measured_s:.1f}/{bench.max_duration_s:g} s"
        if len(windows) < bench.min_repetitions or measured_s < bench.min_duration_s:
            continue
        if measured_s >= bench.max_duration_s or (interval and interval.relative_half_width <= bench.target_ci):
            return
        if headline_domains(window.measurement)[1] == "estimate":
            return


def _record_peaks(run: Run, device: str) -> None:
    """Peaks of the measured workload, read before the quality evaluation adds its own."""
    import torch

    if device.startswith("cuda"):
        peak_bytes = sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
        run.result.gpu_peak_mb = peak_bytes / 2**20
    run.result.ram_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _quality(run: Run, work: _Work) -> None:
    run.enter("quality (perplexity on held-out text)", stages.QUALITY)
    text = heldout_text(run.config.quality.dataset)
    with run.meter.window("quality") as window:
        score = perplexity(work.model, work.tokenizer, text, run.config.quality, str(input_device(work.model)))
    run.result.quality = QualityWindow(window.measured(), score.perplexity, score.tokens)
    log.info("perplexity %.3f over %d tokens", score.perplexity, score.tokens)
