"""One run's result from its independent benchmark processes (``bench.processes``).

A benchmark process keeps its own level of energy and speed for its whole life: seen on an H100,
runs of one point sat 2.6% apart while each run's windows agreed within 1-2% and the processes
forked from one pre-warmed parent within 0.5%. Only independent processes show that spread, so
a run measures with several fresh interpreters, one after another, each loading, warming up and
measuring on its own.
Their windows become one result: the first process's load, idle baseline and prefill, every
process's warm-ups and generate windows (each tagged with its process), the first one's quality
window, all on the first process's clock.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from mlflow_energy.bench.result import CODECARBON_DIR, TIMELINE_FILE, BenchResult, Status
from mlflow_energy.bench.stages import add_stages
from mlflow_energy.bench.summary import conclude
from mlflow_energy.config import RunConfig, config_hash, point_hash
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import TimelineSample, read_timeline_csv, write_timeline_csv


def process_folder(out_dir: Path, k: int) -> Path:
    """Where process ``k`` (1-based) of a run keeps its own files."""
    return out_dir / f"process-{k}"


def _clock_start_ms(result: BenchResult, timeline: list[TimelineSample]) -> float:
    """The wall-clock time of a process's meter clock zero (from its timeline, where it has one)."""
    if timeline:
        return timeline[0].timestamp_ms - timeline[0].t_s * 1000
    return float(result.started_ms)


def _shifted(m: Measurement, offset_s: float) -> Measurement:
    return dataclasses.replace(m, start_s=m.start_s + offset_s)


def merge_processes(results: list[BenchResult], config: RunConfig, out_dir: Path, planned: int) -> BenchResult:
    """The run of ``config`` from its processes' results (in order; the last is the first that did
    not finish, if one did not), saved to ``out_dir`` with the merged timeline. FAILED, with that
    process's error and what the ones before it measured, unless every process finished."""
    timelines = [read_timeline_csv(process_folder(out_dir, k) / TIMELINE_FILE)
                 if (process_folder(out_dir, k) / TIMELINE_FILE).is_file() else []
                 for k in range(1, len(results) + 1)]  # fmt: skip
    zero_ms = _clock_start_ms(results[0], timelines[0])
    merged = BenchResult.from_dict(results[0].to_dict())
    # The processes after the first skipped the quality evaluation: the run is the config asked.
    merged.config, merged.config_hash, merged.point_hash = config, config_hash(config), point_hash(config)
    merged.warmup, merged.repetitions, merged.problems, merged.stages_s, timeline = [], [], [], {}, []
    for k, (result, samples) in enumerate(zip(results, timelines, strict=True), start=1):
        add_stages(merged.stages_s, result.stages_s)
        offset_s = (_clock_start_ms(result, samples) - zero_ms) / 1000
        merged.warmup += [_shifted(m, offset_s) for m in result.warmup]
        merged.repetitions += [dataclasses.replace(r, measurement=_shifted(r.measurement, offset_s), process=k)
                               for r in result.repetitions]  # fmt: skip
        if result.quality is not None:
            merged.quality = dataclasses.replace(result.quality, measurement=_shifted(result.quality.measurement,
                                                                                      offset_s))  # fmt: skip
        merged.problems += result.problems
        timeline += [dataclasses.replace(s, t_s=s.t_s + offset_s) for s in samples]
        merged.gpu_peak_mb = max((p for p in (merged.gpu_peak_mb, result.gpu_peak_mb) if p is not None), default=None)
        merged.ram_peak_mb = max((p for p in (merged.ram_peak_mb, result.ram_peak_mb) if p is not None), default=None)
        if (process_folder(out_dir, k) / CODECARBON_DIR).is_dir():
            shutil.copytree(process_folder(out_dir, k) / CODECARBON_DIR, out_dir / CODECARBON_DIR / f"process-{k}",
                            dirs_exist_ok=True)  # fmt: skip
    last = results[-1]
    merged.ended_ms, merged.phase = last.ended_ms, last.phase
    if last.status != Status.FINISHED:
        merged.status = Status.FAILED
        merged.error = f"benchmark process {len(results)} of {planned}: {last.error or 'did not finish'}"
        merged.phase = f"{last.phase} (benchmark process {len(results)} of {planned})"
    write_timeline_csv(timeline, out_dir / TIMELINE_FILE)
    conclude(merged, timeline)
    merged.write(out_dir)
    return merged
