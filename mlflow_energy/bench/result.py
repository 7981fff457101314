"""BenchResult: everything a benchmark run measured, as plain data that round-trips through JSON."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from mlflow_energy.config import RunConfig, to_run_config
from mlflow_energy.inference.load_generator import RequestRecord
from mlflow_energy.inference.pruning import PruningOutcome
from mlflow_energy.meter.measurement import Measurement

RESULT_FILE = "result.json"
ONE_RUN = "one run's windows"  # what the interval of a single benchmark process's J/token covers
TIMELINE_FILE = "power_timeline.csv"
CODECARBON_DIR = "codecarbon"  # CodeCarbon's own CSV output


def interval_label(processes: int) -> str:
    """What a run's intervals cover: its windows, or from 3 processes, where a repeat lands."""
    return f"{processes} benchmark processes: where a repeat of the run lands" if processes >= 3 else ONE_RUN


class ResultFileError(ValueError):
    """A result.json that cannot be read back: one sentence naming the file."""


class Status(str, Enum):
    """How a benchmark run ended (``running`` while it measures). The value is what result.json
    and the ``mlflow_energy.status`` tag hold."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    def __str__(self) -> str:  # the value in f-strings and tags, on every Python version
        return self.value


@dataclass
class RepetitionWindow:
    """One measured window holding ``len(request_s)`` identical generate calls."""

    measurement: Measurement
    request_s: list[float]  # wall time of each generate call, seconds
    process: int = 1  # which of the run's benchmark processes measured it (bench.processes)


@dataclass
class PrefillWindow:
    """One measured window of repeated prefill forward passes (each is one time-to-first-token)."""

    measurement: Measurement
    call_s: list[float]


@dataclass
class QualityWindow:
    """The perplexity evaluation, measured in its own window after the energy measurement."""

    measurement: Measurement
    perplexity: float
    tokens: int  # predicted tokens the perplexity covers


@dataclass
class ServingRun:
    """What a serving run measured besides the windows every run has.

    Attributes:
        server: what answered (``transformers serve 5.17.0 (continuous batching)``, or
            ``attached: URL``).
        model: the model id the requests named.
        measured_gpus: CUDA indices of this host whose energy counts (empty on a CPU run).
        windows: the steady-state windows, back to back but for the counter-alignment waits.
        requests: every request sent, warm-up and drain included.
        ramp_up_s: from the first request of the load to the first window.
        drain_s: from the last window's end to the last request's end.
        server_pid: the managed server's process id (None when attached).
    """

    server: str
    model: str
    measured_gpus: list[int] = field(default_factory=list)
    windows: list[Measurement] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    ramp_up_s: float | None = None
    drain_s: float | None = None
    server_pid: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServingRun:
        data = dict(data)
        data["windows"] = [Measurement.from_dict(m) for m in data.get("windows", [])]
        data["requests"] = [RequestRecord(**r) for r in data.get("requests", [])]
        return cls(**data)


@dataclass
class Summary:
    """Derived figures; each field becomes the MLflow metric ``<section>/<rest>`` (first ``_``
    -> ``/``), see store/names.py. None where not applicable (no GPU, no idle baseline...)
    or below the noise floor (see ``Assessment.below_noise_floor``).
    Energy is gross over the measured generate windows unless the name says net. Every
    ``energy_*`` figure that is not per domain counts the headline domains only: the measured
    ones, or every domain when none is measured (``Assessment.headline``); ``with_estimates``
    figures add CodeCarbon's estimated domains."""

    energy_total_j: float | None = None
    energy_gpu_j: float | None = None
    energy_cpu_j: float | None = None
    energy_ram_j: float | None = None
    energy_idle_w: float | None = None  # all measured domains, while loaded and idle
    energy_gpu_idle_w: float | None = None
    energy_net_j: float | None = None
    energy_gpu_net_j: float | None = None
    energy_j_per_token: float | None = None
    energy_j_per_token_std: float | None = None
    energy_j_per_token_ci95_low: float | None = None
    energy_j_per_token_ci95_high: float | None = None
    energy_net_j_per_token: float | None = None
    energy_gpu_net_j_per_token: float | None = None
    energy_prefill_j: float | None = None
    energy_decode_j_per_token: float | None = None
    energy_j_per_request: float | None = None
    energy_j_per_request_ci95_low: float | None = None  # serving: from each steady-state window's J/request
    energy_j_per_request_ci95_high: float | None = None
    energy_wh_per_1k_requests: float | None = None
    energy_j_per_processed_token: float | None = None  # serving: prompt and output tokens both count
    energy_with_estimates_total_j: float | None = None
    energy_with_estimates_j_per_token: float | None = None
    energy_with_estimates_j_per_request: float | None = None
    energy_with_estimates_wh_per_1k_requests: float | None = None
    energy_load_j: float | None = None
    energy_warmup_j: float | None = None
    energy_compile_j: float | None = None  # static_compile: the first warm-up call, which compiles
    efficiency_tokens_per_kwh: float | None = None
    emissions_g_co2e: float | None = None  # from energy with estimates (the accounting convention)
    emissions_g_co2e_per_1k_tokens: float | None = None
    emissions_intensity_g_per_kwh: float | None = None
    power_gpu_mean_w: float | None = None
    power_gpu_max_w: float | None = None
    throughput_tokens_per_s: float | None = None
    throughput_tokens_per_s_std: float | None = None
    throughput_tokens_per_s_ci95_low: float | None = None
    throughput_tokens_per_s_ci95_high: float | None = None
    throughput_requests_per_s: float | None = None
    throughput_goodput_requests_per_s: float | None = None  # serving: requests within the serving.slo_* bounds
    latency_ttft_s_p50: float | None = None
    latency_ttft_s_p90: float | None = None
    latency_ttft_s_p99: float | None = None
    latency_tpot_ms_p50: float | None = None
    latency_tpot_ms_p90: float | None = None
    latency_tpot_ms_p99: float | None = None
    latency_request_s_p50: float | None = None
    latency_request_s_p90: float | None = None
    latency_request_s_p99: float | None = None
    latency_load_s: float | None = None
    latency_warmup_s: float | None = None
    latency_compile_s: float | None = None
    memory_gpu_peak_mb: float | None = None
    memory_ram_peak_mb: float | None = None
    measurement_repetitions: int | None = None
    measurement_processes: int | None = None  # benchmark processes whose windows the figures count
    measurement_rejected_windows: int | None = None
    measurement_window_s: float | None = None
    measurement_duration_s: float | None = None
    measurement_generated_tokens: int | None = None
    measurement_requests: int | None = None
    measurement_prompt_tokens: int | None = None  # serving: prompt tokens of the counted requests
    measurement_errors: int | None = None  # serving: failed requests sent after the warm-up
    measurement_ramp_up_s: float | None = None  # serving: excluded before the steady state
    measurement_drain_s: float | None = None  # serving: excluded after it
    measurement_energy_cv: float | None = None
    measurement_ci_relative: float | None = None  # half-width of the J/token interval / J/token
    measurement_target_ci: float | None = None  # bench.target_ci the windows aimed for
    measurement_edge_wait_s: float | None = None  # mean wait per window for counter updates
    measurement_edge_idle_share: float | None = None  # share of the counters' energy removed for the waits
    measurement_cooldown_s: float | None = None  # wait before the workload (bench.cooldown_*)
    measurement_gpu_temperature_c: float | None = None  # hottest GPU at the first measured window's start
    quality_perplexity: float | None = None
    quality_tokens: int | None = None
    quality_eval_j: float | None = None  # energy the evaluation itself used (not in energy/*)
    quality_eval_s: float | None = None


@dataclass
class Assessment:
    """How far a run's figures can be trusted, in words a console, a tag and a description share.

    Attributes:
        headline: ``measured`` (GPU counters, sampled GPU power, RAPL) or ``estimate`` (no
            measured domain: CodeCarbon's models are the headline).
        headline_sources: ``domain:source`` of each domain the headline counts.
        estimated_sources: ``domain:source`` of each estimated domain left out of it.
        interval: ``one run's windows`` or ``N replicates``: what the J/token interval covers.
        target_reached: the J/token interval met ``bench.target_ci``; None without an interval.
        below_noise_floor: metric keys left out because noise made them negative.
        warnings: sentences that say why the figures need care; empty when they don't.
    """

    headline: str = "measured"
    headline_sources: list[str] = field(default_factory=list)
    estimated_sources: list[str] = field(default_factory=list)
    interval: str = ONE_RUN
    target_reached: bool | None = None
    below_noise_floor: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class BenchResult:
    """The whole record of one benchmark run."""

    config: RunConfig
    config_hash: str
    point_hash: str = ""  # config hash without the replicate number (see config.point_hash)
    # Names this measurement in the store: logging it again finds the run instead of adding one.
    result_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    ended_ms: int | None = None
    status: Status = Status.RUNNING
    error: str | None = None
    phase: str = "starting"  # last phase entered; tells where a failure happened
    device: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    model_parameters: int | None = None
    tokens_per_call: int | None = None  # batch_size x new_tokens
    load: Measurement | None = None
    idle: Measurement | None = None
    warmup: list[Measurement] = field(default_factory=list)  # one window per warm-up call
    prefill: PrefillWindow | None = None
    repetitions: list[RepetitionWindow] = field(default_factory=list)
    quality: QualityWindow | None = None
    serving: ServingRun | None = None  # scenario=serving
    int8_layers: int | None = None  # modules whose weights are stored as int8 (quantized runs)
    pruning: PruningOutcome | None = None  # what pruning left (pruned runs)
    gpu_peak_mb: float | None = None
    ram_peak_mb: float | None = None
    carbon_intensity_g_per_kwh: float | None = None
    pue: float = 1.0
    cooldown_s: float | None = None  # waited before the workload for the GPU to cool (bench.cooldown_*)
    stages_s: dict[str, float] = field(default_factory=dict)  # wall seconds per stage (bench/stages.py)
    problems: list[str] = field(default_factory=list)
    summary: Summary | None = None
    assessment: Assessment | None = None

    def windows(self) -> list[tuple[str, Measurement]]:
        """Every measured window with its phase (load, idle, warm-up, prefill, generate, quality),
        in the order they ran."""
        phases = [("load", self.load), ("idle", self.idle), *(("warm-up", m) for m in self.warmup),
                  ("prefill", self.prefill.measurement if self.prefill else None),
                  *(("generate", r.measurement) for r in self.repetitions),
                  ("quality", self.quality.measurement if self.quality else None)]  # fmt: skip
        if self.serving is not None:
            phases += [("steady state", m) for m in self.serving.windows]
        # Sorted by start: several benchmark processes' windows interleave phases.
        return sorted(((phase, m) for phase, m in phases if m is not None), key=lambda pm: pm[1].start_s)

    def headline_windows(self) -> list[Measurement]:
        """The windows the headline figures divide: the generate windows, or a serving run's
        steady-state windows."""
        if self.serving is not None:
            return self.serving.windows
        return [r.measurement for r in self.repetitions]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        data = dict(data)
        data["config"] = to_run_config(data["config"])
        data["status"] = Status(data.get("status", Status.RUNNING))
        for key in ("load", "idle"):
            if data.get(key) is not None:
                data[key] = Measurement.from_dict(data[key])
        data["warmup"] = [Measurement.from_dict(m) for m in data.get("warmup", [])]
        if data.get("prefill") is not None:
            p = data["prefill"]
            data["prefill"] = PrefillWindow(Measurement.from_dict(p["measurement"]), p["call_s"])
        if data.get("quality") is not None:
            q = data["quality"]
            data["quality"] = QualityWindow(Measurement.from_dict(q["measurement"]), q["perplexity"], q["tokens"])
        data["repetitions"] = [
            RepetitionWindow(Measurement.from_dict(r["measurement"]), r["request_s"], r.get("process", 1))
            for r in data.get("repetitions", [])
        ]
        if data.get("serving") is not None:
            data["serving"] = ServingRun.from_dict(data["serving"])
        if data.get("pruning") is not None:
            data["pruning"] = PruningOutcome(**data["pruning"])
        if data.get("summary") is not None:
            data["summary"] = Summary(**data["summary"])
        if data.get("assessment") is not None:
            data["assessment"] = Assessment(**data["assessment"])
        # A result saved before results had ids gets one that is the same at every read.
        data.setdefault("result_id", f"{data.get('config_hash')}-{data.get('started_ms')}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self, folder: Path) -> Path:
        """Atomic write of ``result.json``: a reader never sees half a file."""
        path = folder / RESULT_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, folder: Path) -> BenchResult:
        """ResultFileError, in one sentence, for a file that is missing, cut short or not a result."""
        from omegaconf.errors import OmegaConfBaseException

        path = folder / RESULT_FILE
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
                raise TypeError("no config object")
            return cls.from_dict(data)
        except FileNotFoundError:
            raise ResultFileError(f"{folder} holds no {RESULT_FILE}; pass the output folder a run printed.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultFileError(f"{path} cannot be read as JSON ({exc}); it is damaged or cut short.") from None
        except (TypeError, KeyError, AttributeError, ValueError, OmegaConfBaseException) as exc:
            raise ResultFileError(f"{path} is not an mlflow-energy result ({type(exc).__name__}: {exc}).") from None
