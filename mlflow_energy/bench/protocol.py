"""The measurement protocol, run inside the isolated child process.

load (window) -> idle baseline (window) -> warm-up identical to the measured call ->
prefill window (repeated forward passes) -> generate windows, repeated until both
``bench.min_repetitions`` and ``bench.min_duration_s`` hold. The partial result is written
after every phase so a crash keeps what was measured.
"""

from __future__ import annotations

import logging
import math
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_energy.bench import environment
from mlflow_energy.bench.result import (
    CODECARBON_DIR,
    TIMELINE_FILE,
    BenchResult,
    PrefillWindow,
    QualityWindow,
    RepetitionWindow,
)
from mlflow_energy.bench.summary import summarize
from mlflow_energy.config import RunConfig, as_dict, config_hash, resolve_device
from mlflow_energy.inference import generation
from mlflow_energy.inference.models import input_device, load_model, load_tokenizer, parameter_count, resolve_model
from mlflow_energy.inference.prompts import make_batch
from mlflow_energy.inference.quality import heldout_text, perplexity
from mlflow_energy.inference.quantization import int8_linear_count
from mlflow_energy.meter.carbon import grid_intensity_g_per_kwh
from mlflow_energy.meter.energy_meter import EnergyMeter
from mlflow_energy.meter.gpu import NvmlGpus
from mlflow_energy.meter.host import HostEnergy
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

    host = HostEnergy(config.carbon.country_iso_code, config.carbon.region, out_dir / CODECARBON_DIR)
    if device.startswith("cuda"):
        used = range(torch.cuda.device_count()) if config.model.device_map else [int(device.partition(":")[2] or 0)]
        gpus = NvmlGpus(cuda_uuids={i: str(torch.cuda.get_device_properties(i).uuid) for i in used})
        sync: Callable[[], None] = torch.cuda.synchronize
    else:
        gpus = NvmlGpus(disabled_reason="the run uses the CPU, so no GPU is measured")
        sync = lambda: None  # noqa: E731
    return EnergyMeter(sync, config.bench.sample_period_s, host, gpus), sync


def run_protocol(config: RunConfig, out_dir: Path, save: Callable[[BenchResult], None]) -> BenchResult:
    import torch

    b, w = config.bench, config.workload
    result = BenchResult(config=as_dict(config), config_hash=config_hash(config), pue=config.carbon.pue)
    device = resolve_device(config.device)
    result.device = device
    result.tokens_per_call = w.batch_size * w.new_tokens
    result.carbon_intensity_g_per_kwh = grid_intensity_g_per_kwh(config.carbon.country_iso_code, config.carbon.region)
    meter, sync = _meter_for(device, config, out_dir)
    try:
        result.environment = environment.collect(meter)

        def enter(phase: str) -> None:
            result.phase = phase
            save(result)
            log.info("%s", phase)

        enter("load")
        source = resolve_model(config.model)
        with meter.window("load") as window:
            tokenizer = load_tokenizer(source, config.model)
            model = load_model(source, config.model, device)
        result.load = window.measurement
        result.model_parameters = parameter_count(model)
        if config.model.quantization != "none":
            result.int8_layers = int8_linear_count(model)
        log.info("loaded %s (%.1f M parameters) on %s in %.1f s", config.model.name,
                 result.model_parameters / 1e6, device, result.load.duration_s)

        batch = make_batch(w, tokenizer, model.config.vocab_size, input_device(model), config.model.seed)
        gen_config = generation.fixed_length_config(
            model, tokenizer, w.new_tokens, config.backend.cache, compiled=config.backend.name == "static_compile"
        )
        call = lambda: generation.generate(model, batch, gen_config)  # noqa: E731

        if b.idle_s > 0:
            enter(f"idle baseline ({b.idle_s:g} s)")
            result.idle = meter.measure_idle(b.idle_s)

        for i in range(b.warmup_runs):
            enter(f"warm-up {i + 1}/{b.warmup_runs}")
            with meter.window(f"warmup_{i + 1}") as window:
                call()
            result.warmup.append(window.measurement)
        # The warm-up generate already ran this prefill shape; one more call times it.
        prefill_call = lambda: generation.prefill(model, batch)  # noqa: E731
        prefill_calls = _calls_for(b.min_window_s, _timed(prefill_call, sync))
        enter(f"prefill window ({prefill_calls} forward passes)")
        call_s: list[float] = []
        with meter.window("prefill") as window:
            for _ in range(prefill_calls):
                call_s.append(_timed(prefill_call, sync))
        result.prefill = PrefillWindow(window.measurement, call_s)

        calls = _calls_for(b.min_window_s, result.warmup[-1].duration_s)
        measured_s, k = 0.0, 0
        while k < b.min_repetitions or measured_s < b.min_duration_s:
            k += 1
            enter(f"repetition {k} (>= {b.min_repetitions}, {measured_s:.1f}/{b.min_duration_s:g} s, {calls} calls)")
            request_s: list[float] = []
            with meter.window(f"generate_{k}") as window:
                for _ in range(calls):
                    request_s.append(_timed(call, sync))
            result.repetitions.append(RepetitionWindow(window.measurement, request_s))
            measured_s += window.measurement.duration_s

        # Peaks of the measured workload, read before the quality evaluation adds its own.
        if device.startswith("cuda"):
            result.gpu_peak_mb = sum(
                torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())
            ) / 2**20
        result.ram_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        if config.quality.enabled:  # after the energy windows, never inside them
            enter("quality (perplexity on held-out text)")
            text = heldout_text(config.quality.dataset)
            with meter.window("quality") as window:
                score = perplexity(model, tokenizer, text, config.quality, str(input_device(model)))
            result.quality = QualityWindow(window.measurement, score.perplexity, score.tokens)
            log.info("perplexity %.3f over %d tokens", score.perplexity, score.tokens)

        result.status = "finished"
        result.phase = "done"
    except BaseException as exc:
        result.status = "failed"
        result.error = f"{type(exc).__name__} during {result.phase}: {exc}"
        raise
    finally:
        meter.close()
        timeline = meter.timeline()
        write_timeline_csv(timeline, out_dir / TIMELINE_FILE)
        result.problems = [p for m in _measurements(result) for p in m.problems]
        result.summary = summarize(result, timeline, w.new_tokens, w.batch_size)
        result.ended_ms = int(time.time() * 1000)
        save(result)
    return result


def _measurements(result: BenchResult) -> list[Any]:
    windows = [result.load, result.idle, *result.warmup, result.prefill.measurement if result.prefill else None,
               result.quality.measurement if result.quality else None]  # fmt: skip
    windows += [r.measurement for r in result.repetitions]
    return [m for m in windows if m is not None]
