"""What a benchmark result becomes in MLflow: its tags, params and timeline metrics (names from
store/names.py). Pure: record/writer.py writes them."""

from __future__ import annotations

from typing import Any

from mlflow_energy.bench.result import BenchResult
from mlflow_energy.config import as_dict, flatten, not_applicable
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import HOST, TimelineSample
from mlflow_energy.report.headline import basis_label, trust_verdict
from mlflow_energy.report.run_card import description
from mlflow_energy.report.timeline import phase_codes
from mlflow_energy.store import names


def run_tags(result: BenchResult) -> dict[str, str]:
    """Status, hashes, hardware, energy sources, versions, error, rejected readings, and trust."""
    env = result.environment
    gpus = env.get("gpus") or []
    tags = {names.TAG_STATUS: result.status.value, names.TAG_CONFIG_HASH: result.config_hash}
    tags |= names.hardware_tags(env.get("cpu_model"), [g["name"] for g in gpus], env.get("gpu_driver"))
    if result.device:  # unknown when the run failed before it chose one
        tags[names.TAG_DEVICE] = result.device
    for domain, source in (env.get("energy_sources") or {}).items():
        tags[names.TAG_SOURCE_PREFIX + domain] = source
    for package, version in (env.get("packages") or {}).items():
        if version:
            tags[names.TAG_VERSION_PREFIX + package] = version
    if result.error:
        tags[names.TAG_ERROR] = result.error[:5000]
    if result.problems:
        tags[names.TAG_PROBLEMS] = "; ".join(result.problems)[:5000]
    if result.serving is not None:
        gpus = ", ".join(f"cuda:{i}" for i in result.serving.measured_gpus)
        tags |= {names.TAG_SERVING_SERVER: result.serving.server, names.TAG_SERVING_MODEL: result.serving.model,
                 names.TAG_SERVING_GPUS: gpus or "none (CPU only)"}  # fmt: skip
    return {**tags, **_trust_tags(result)}


def _trust_tags(result: BenchResult) -> dict[str, str]:
    """What the headline counts, whether it can be trusted (a column users can show), and the
    run description that says both."""
    a = result.assessment
    tags = {
        names.TAG_TRUST: trust_verdict(a)[:5000],
        names.TAG_DESCRIPTION: description(result),
        names.TAG_REPLICATE: str(result.config.sweep.replicate),
    }
    if result.point_hash:
        tags[names.TAG_POINT_HASH] = result.point_hash
    if a is not None and a.headline_sources:
        tags[names.TAG_HEADLINE] = basis_label(a)
    if a is not None and a.below_noise_floor:
        keys = ", ".join(names.metric_key(f) for f in a.below_noise_floor)
        tags[names.TAG_BELOW_NOISE_FLOOR] = f"{keys}: below the noise floor (noise exceeds the value), not logged"
    return tags


def run_params(result: BenchResult) -> dict[str, str]:
    """The run's params: the flattened config (``tracking.*`` left out) and what the run learnt."""
    leave_out = ("tracking.", *not_applicable(result.config))
    params = {k: str(v) for k, v in flatten(as_dict(result.config)).items() if not k.startswith(leave_out)}
    params[names.PARAM_SCENARIO] = result.config.scenario
    params[names.PARAM_RESOLVED_DEVICE] = str(result.device)
    if result.model_parameters is not None:
        params[names.PARAM_MODEL_PARAMETERS] = str(result.model_parameters)
    if result.int8_layers is not None:
        params[names.PARAM_INT8_LAYERS] = str(result.int8_layers)
    if result.pruning is not None:
        p = result.pruning
        params |= {names.PARAM_SPARSITY_REACHED: f"{p.sparsity_reached:.4f}",
                   names.PARAM_NONZERO_PARAMETERS: str(p.nonzero_parameters),
                   names.PARAM_DECODER_LAYERS: str(p.decoder_layers),
                   names.PARAM_LAYERS_REMOVED: str(p.layers_removed)}  # fmt: skip
    return params


# Timeline fields as MLflow's own system-metrics monitor names them (``gpu_0_power_usage_watts``),
# so the run page's System metrics tab plots them against wall-clock time.
_GPU_SERIES = {"power_w": "power_usage_watts", "sm_clock_mhz": "sm_clock_mhz", "temperature_c": "temperature_celsius",
               "utilization_pct": "utilization_percentage", "memory_used_mb": "memory_usage_megabytes"}  # fmt: skip
_HOST_SERIES = {"utilization_pct": "cpu_utilization_percentage", "memory_used_mb": "process_memory_usage_megabytes"}


def timeline_metrics(timeline: list[TimelineSample], phases: list[tuple[str, Measurement]]) -> list[Any]:
    """The timeline as MLflow system metrics (``system/gpu_0_power_usage_watts``,
    ``system/cpu_utilization_percentage``...; step = sample number, timestamp = wall clock), and
    ``system/benchmark_phase``: each phase's code (``phase_codes``) at its start and its end."""
    from mlflow.entities import Metric

    steps: dict[str, int] = {}
    metrics = []

    def add(key: str, value: float, timestamp_ms: int) -> None:
        steps[key] = steps.get(key, -1) + 1
        metrics.append(Metric(key, value, timestamp_ms, steps[key]))

    for sample in timeline:
        series = _HOST_SERIES if sample.device == HOST else _GPU_SERIES
        prefix = "system/" if sample.device == HOST else f"system/gpu_{sample.device.removeprefix('gpu')}_"
        for field, name in series.items():
            value = getattr(sample, field)
            if value is not None:
                add(prefix + name, value, sample.timestamp_ms)
    if timeline:  # each phase drawn from its start to its end, at the code phase_codes gives it
        codes, first = phase_codes(phases), timeline[0]
        edges = sorted((first.timestamp_ms + round((t_s - first.t_s) * 1000), codes[label])
                       for label, m in phases for t_s in (m.start_s, m.end_s))  # fmt: skip
        for timestamp_ms, code in edges:
            add(names.SYSTEM_PHASE, float(code), timestamp_ms)
    return metrics
