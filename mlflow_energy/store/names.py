"""The one place that owns MLflow names: metric keys, params, tags, artifact files, run statuses
and the Model Registry's version tags.

Metric keys are ``<section>/<name>_<unit>`` so the MLflow UI groups charts by section. They
are derived from the ``Summary`` field names (first ``_`` becomes ``/``), so result.json and
the logged metrics cannot drift apart.

Headline energy figures (``energy/total_j``, ``energy/j_per_token``...) count measured energy
only (GPU counters or sampled GPU power, RAPL). The same figure with CodeCarbon's estimated
domains added is ``energy/with_estimates_<name>``. A 95% interval of a
metric is ``<metric>_ci95_low`` / ``_ci95_high`` (``interval_keys``). Constants built by
``_metric`` and ``param_key`` are checked against ``Summary`` and ``RunConfig`` at import.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, fields

from mlflow_energy.bench.result import Summary
from mlflow_energy.config import RunConfig

SECTIONS = ("energy", "efficiency", "emissions", "power", "throughput", "latency", "memory", "measurement", "quality")

# MLflow's run statuses (mlflow.entities.RunStatus), as its APIs and search syntax spell them.
RUN_FINISHED, RUN_FAILED, RUN_KILLED, RUN_RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"

TAG_PREFIX = "mlflow_energy."
TAG_STATUS = TAG_PREFIX + "status"
TAG_ERROR = TAG_PREFIX + "error"
TAG_JOB_LOST = TAG_PREFIX + "job_lost"  # how the engine lost a sweep job (killed, cancelled, preempted)
TAG_CONFIG_HASH = TAG_PREFIX + "config_hash"
TAG_DEVICE = TAG_PREFIX + "device"
TAG_GPU_MODEL = TAG_PREFIX + "gpu_model"
TAG_GPU_COUNT = TAG_PREFIX + "gpu_count"
TAG_GPU_DRIVER = TAG_PREFIX + "gpu_driver"
TAG_CPU_MODEL = TAG_PREFIX + "cpu_model"
TAG_GPU_POWER_LIMIT = TAG_PREFIX + "gpu_power_limit_w"  # the visible GPUs' power limits, each once


def hardware_tags(cpu_model: str | None, gpu_models: list[str], gpu_driver: str | None = None,
                  gpu_power_limits_w: Iterable[float] = ()) -> dict[str, str]:  # fmt: skip
    """The hardware tags, however the hardware was read (a benchmark's environment, the run
    context provider, the evaluator's meter): the GPU count and models (one name per GPU), the
    driver and power limits where known, and the CPU model."""
    tags = {TAG_GPU_COUNT: str(len(gpu_models))}
    if cpu_model:
        tags[TAG_CPU_MODEL] = cpu_model
    if gpu_models:
        tags[TAG_GPU_MODEL] = ", ".join(sorted(set(gpu_models)))
    if gpu_models and gpu_driver:
        tags[TAG_GPU_DRIVER] = gpu_driver
    limits = sorted(set(gpu_power_limits_w))
    if limits:
        tags[TAG_GPU_POWER_LIMIT] = ", ".join(f"{w:g}" for w in limits)
    return tags
TAG_PROBLEMS = TAG_PREFIX + "warning.rejected_readings"
TAG_BELOW_NOISE_FLOOR = TAG_PREFIX + "warning.below_noise_floor"  # metrics left out, and why
TAG_HEADLINE = TAG_PREFIX + "headline"  # what the headline energy counts: measured or estimate
TAG_TRUST = TAG_PREFIX + "trust"  # "ok", or the sentences that say why the figures need care
TAG_POINT_HASH = TAG_PREFIX + "point_hash"  # config hash without the replicate number
TAG_REPLICATE = TAG_PREFIX + "replicate"
TAG_DESCRIPTION = "mlflow.note.content"  # MLflow's run description
TAG_RUN_COLOUR = "mlflow.runColor"  # the colour the MLflow UI draws a run in
TAG_RESULT_ID = TAG_PREFIX + "result_id"  # the measurement a run holds: logged once
TAG_LOGGING = TAG_PREFIX + "logging"  # LOGGING_COMPLETE once every metric, tag and artifact is in
LOGGING_COMPLETE = "complete"
TAG_VERSION_PREFIX = TAG_PREFIX + "version."
TAG_SWEEP_ID = TAG_PREFIX + "sweep_id"  # on the parent and every child of a sweep
TAG_SWEEP_PARENT = TAG_PREFIX + "sweep_parent"  # "true" on the parent run
TAG_SWEEP_COUNTS = TAG_PREFIX + "sweep_counts"  # "finished=4 failed=1 skipped=2 not_logged=0"
TAG_BEST_PREFIX = TAG_PREFIX + "best."  # + metric key: the best point's name and value
TAG_MLFLOW_PARENT = "mlflow.parentRunId"  # MLflow's own nesting tag
TAG_SOURCE_PREFIX = TAG_PREFIX + "source."  # + gpu | cpu | ram
TAG_PHASES = TAG_PREFIX + "phases"  # the codes of system/benchmark_phase: "1 load, 2 idle, ..."
TAG_SERVING_SERVER = TAG_PREFIX + "serving.server"  # what answered: transformers serve VERSION (...) | attached: URL
TAG_SERVING_MODEL = TAG_PREFIX + "serving.model"  # the model id the requests named
TAG_SERVING_GPUS = TAG_PREFIX + "serving.measured_gpus"  # CUDA indices measured, or "none (CPU only)"

ARTIFACT_CONFIG = "config.yaml"
ARTIFACT_ENVIRONMENT = "environment.json"
ARTIFACT_TIMELINE_PLOT = "power_timeline.png"
ARTIFACT_ERROR = "error.txt"
ARTIFACT_ENERGY_CARD = "energy_card.json"  # the run's headline figures, one row each (mlflow.log_table)
ARTIFACT_SUMMARY_CSV = "summary.csv"
ARTIFACT_SUMMARY_HTML = "summary.html"
ARTIFACT_PARETO = "pareto.png"
ARTIFACT_SWEEP_POINTS = "sweep_points.json"
ARTIFACT_REQUESTS_CSV = "requests.csv"  # a serving run's per-request records
ARTIFACT_LATENCY_CDF = "latency_cdf.png"
ARTIFACT_ENERGY_EVALUATION = "energy_evaluation.json"  # the energy evaluator's windows (mlflow.models.evaluate)

# Sweep parent metrics: how its grid points ended.
SYSTEM_PHASE = "system/benchmark_phase"  # each phase's code at its start and end (TAG_PHASES says which)
METRIC_SWEEP_POINTS = "sweep/points"
METRIC_SWEEP_FINISHED = "sweep/finished"
METRIC_SWEEP_FAILED = "sweep/failed"
METRIC_SWEEP_SKIPPED = "sweep/skipped"
METRIC_SWEEP_NOT_LOGGED = "sweep/not_logged"  # measured, kept on disk: the tracking server did not answer
TIME_PREFIX = "time/"  # + stage + "_s": where the run's wall time went (bench/stages.py)

TRUST_OK = "ok"


def metric_key(field_name: str) -> str:
    section, _, rest = field_name.partition("_")
    if section not in SECTIONS or not rest:
        raise ValueError(f"summary field {field_name!r} has no known section prefix")
    return f"{section}/{rest}"


_SUMMARY_FIELDS = {f.name for f in fields(Summary)}


def _metric(field_name: str) -> str:
    """The metric of one Summary field: a renamed field fails here, at import, not in a user's run."""
    if field_name not in _SUMMARY_FIELDS:
        raise ValueError(f"Summary has no field {field_name!r}")
    return metric_key(field_name)


ALL_METRIC_KEYS = tuple(metric_key(f.name) for f in fields(Summary))

# The axes of every efficiency comparison (report, Pareto fronts, registry).
ENERGY_PER_TOKEN = _metric("energy_j_per_token")
THROUGHPUT = _metric("throughput_tokens_per_s")
PERPLEXITY = _metric("quality_perplexity")
# Metrics the report, the registry and the console read by name.
NET_PER_TOKEN = _metric("energy_net_j_per_token")
GPU_NET_PER_TOKEN = _metric("energy_gpu_net_j_per_token")
WITH_ESTIMATES_PER_TOKEN = _metric("energy_with_estimates_j_per_token")
EMISSIONS_PER_1K_TOKENS = _metric("emissions_g_co2e_per_1k_tokens")
TTFT_P50 = _metric("latency_ttft_s_p50")
TPOT_P50 = _metric("latency_tpot_ms_p50")
REQUEST_P50 = _metric("latency_request_s_p50")
GPU_PEAK_MB = _metric("memory_gpu_peak_mb")
RAM_PEAK_MB = _metric("memory_ram_peak_mb")
ENERGY_CV = _metric("measurement_energy_cv")
WINDOW_S = _metric("measurement_window_s")
REPETITIONS = _metric("measurement_repetitions")  # windows behind a run's own interval
PROCESSES = _metric("measurement_processes")  # benchmark processes behind it (from 3: a repeat's interval)
# The energy evaluator's figures (integrations/energy_evaluator.py), beside the ones above.
TOTAL_ENERGY = _metric("energy_total_j")
ENERGY_PER_REQUEST = _metric("energy_j_per_request")
WH_PER_1K_REQUESTS = _metric("energy_wh_per_1k_requests")
REQUEST_P90 = _metric("latency_request_s_p90")
REQUESTS = _metric("measurement_requests")
GENERATED_TOKENS = _metric("measurement_generated_tokens")

# Metrics a sweep ranks its children by, and whether lower is better.
RANKED_METRICS = {
    ENERGY_PER_TOKEN: "min",
    ENERGY_PER_REQUEST: "min",
    GPU_NET_PER_TOKEN: "min",
    EMISSIONS_PER_1K_TOKENS: "min",
    THROUGHPUT: "max",
    TTFT_P50: "min",
    REQUEST_P50: "min",
    REQUEST_P90: "min",
    PERPLEXITY: "min",
}


def interval_keys(metric: str) -> tuple[str, str]:
    """``energy/j_per_token`` -> its 95% interval's metric keys (low, high)."""
    return f"{metric}_ci95_low", f"{metric}_ci95_high"


def summary_metrics(summary: Summary) -> dict[str, float]:
    """Metric key -> value for every figure that exists (None fields are not logged)."""
    return {metric_key(k): float(v) for k, v in asdict(summary).items() if v is not None}


def stage_metrics(stages_s: dict[str, float]) -> dict[str, float]:
    """``time/load_s``, ``time/windows_s``...: the wall time of each stage of the run."""
    return {f"{TIME_PREFIX}{stage}_s": seconds for stage, seconds in stages_s.items()}


def per_gpu_energy_metrics(gpu_j: dict[str, float]) -> dict[str, float]:
    """``energy/gpu0_j``, ``energy/gpu1_j``...: logged when a run spans several GPUs."""
    return {f"energy/gpu{index}_j": joules for index, joules in gpu_j.items()} if len(gpu_j) > 1 else {}


def window_metrics(
    window: str, count: int, duration_s: float, energy_j: float | None, gpu_j: float | None
) -> dict[str, float]:
    """The windows of one name in a ``mlflow_energy.track()`` block, summed: ``window/<name>/count``,
    ``.../duration_s``, ``.../energy_j`` (the headline domains, where every window measured them
    all), ``.../gpu_j``."""
    figures = {"count": float(count), "duration_s": duration_s, "energy_j": energy_j, "gpu_j": gpu_j}
    return {f"window/{window}/{key}": value for key, value in figures.items() if value is not None}


def param_key(section: str, key: str) -> str:
    """The param of one config key (``model.name``): a key RunConfig lacks fails at import."""
    if key not in getattr(RunConfig(), section).__dataclass_fields__:
        raise ValueError(f"RunConfig.{section} has no key {key!r}")
    return f"{section}.{key}"


# Params: the flattened config (config.yaml's keys), and what a run learnt.
PARAM_MODEL_NAME = param_key("model", "name")
PARAM_MODEL_WEIGHTS = param_key("model", "weights")
PARAM_MODEL_REVISION = param_key("model", "revision")
PARAM_MODEL_DTYPE = param_key("model", "dtype")
PARAM_MODEL_QUANTIZATION = param_key("model", "quantization")
PARAM_MODEL_ATTN = param_key("model", "attn_implementation")
PARAM_PRUNING = param_key("model", "pruning")  # + .method, .sparsity, .drop_layers (pruned runs only)
PARAM_PRUNING_METHOD = f"{PARAM_PRUNING}.method"
PARAM_PRUNING_SPARSITY = f"{PARAM_PRUNING}.sparsity"
PARAM_PRUNING_DROP_LAYERS = f"{PARAM_PRUNING}.drop_layers"
PARAM_BATCH_SIZE = param_key("workload", "batch_size")
PARAM_PROMPT_TOKENS = param_key("workload", "prompt_tokens")
PARAM_NEW_TOKENS = param_key("workload", "new_tokens")
PARAM_SCENARIO = "scenario"  # batch | serving (a top-level config key)
PARAM_DEVICE = "device"  # the configured device: auto | cpu | cuda | cuda:N (a top-level config key)
PARAM_RESOLVED_DEVICE = "resolved_device"  # the device the run used (device=auto resolved)
PARAM_MODEL_PARAMETERS = "model.parameters"
PARAM_INT8_LAYERS = "model.int8_layers"  # modules stored as int8 (quantized runs)
# What pruning left, counted on the model (pruned runs; inference/pruning.PruningOutcome).
PARAM_SPARSITY_REACHED = "model.sparsity_reached"  # zero weights among the pruned layers' weights, a fraction
PARAM_NONZERO_PARAMETERS = "model.nonzero_parameters"  # parameters less the weights pruning zeroed
PARAM_DECODER_LAYERS = "model.decoder_layers"  # decoder layers left
PARAM_LAYERS_REMOVED = "model.layers_removed"  # indices of the decoder layers removed, as numbered before
# Params a run learnt while it ran rather than was configured with: not part of what a
# configuration is (report/compare_hardware.py matches configurations on the others). A new learnt
# param belongs here.
LEARNT_PARAMS = (PARAM_MODEL_PARAMETERS, PARAM_INT8_LAYERS, PARAM_SPARSITY_REACHED, PARAM_NONZERO_PARAMETERS,
                 PARAM_DECODER_LAYERS, PARAM_LAYERS_REMOVED)  # fmt: skip

# Model Registry version tags: the energy evidence a deployment pipeline reads without opening
# the run (tag -> metric), and the selection the next challenger must beat.
VERSION_EVIDENCE = {
    "energy.j_per_token": ENERGY_PER_TOKEN,
    "energy.net_j_per_token": NET_PER_TOKEN,
    "energy.gpu_net_j_per_token": GPU_NET_PER_TOKEN,
    "throughput.tokens_per_s": THROUGHPUT,
    "emissions.g_co2e_per_1k_tokens": EMISSIONS_PER_1K_TOKENS,
    "quality.perplexity": PERPLEXITY,
}
VERSION_HARDWARE = "hardware"
VERSION_SOURCE_RUN = "source_run_id"  # also on the run that logged the registered model
VERSION_SOURCE_RUNS = "source_run_ids"  # every replicate the figures average
VERSION_SELECTED_BY = "selected_by"
VERSION_SELECTED_VALUE = "selected_value"
VERSION_SELECTED_LOW, VERSION_SELECTED_HIGH = interval_keys("selected")
VERSION_SELECTED_COVERS = "selected_interval"  # what the interval covers: N replicates or one run's windows
VERSION_PARAMS = (PARAM_MODEL_NAME, PARAM_MODEL_DTYPE, PARAM_MODEL_QUANTIZATION, PARAM_PRUNING_METHOD,
                  PARAM_PRUNING_DROP_LAYERS, PARAM_BATCH_SIZE, PARAM_RESOLVED_DEVICE)  # fmt: skip

# Span attributes and trace tags of traced GenAI calls (integrations/span_energy.py). A span's
# figures are its own share of the GPU energy; the trace's totals sum its spans' shares.
SPAN_PREFIX = "mlflow_energy."
SPAN_ENERGY_J = SPAN_PREFIX + "energy_j"  # GPU joules of the span (its share while spans overlapped)
SPAN_OUTPUT_TOKENS = SPAN_PREFIX + "output_tokens"  # from the span's token usage, where it has one
SPAN_J_PER_OUTPUT_TOKEN = SPAN_PREFIX + "j_per_output_token"
SPAN_ENERGY_SOURCE = SPAN_PREFIX + "energy_source"  # "gpu:nvml_counter", or "none" where nothing reads the GPU
SPAN_ENERGY_KIND = SPAN_PREFIX + "energy_kind"  # "measured" or "estimate"; absent where no figure
SPAN_ENERGY_NOTE = SPAN_PREFIX + "energy_note"  # why a span has no figure (too short, no counter)
SPAN_CONCURRENT = SPAN_PREFIX + "concurrent_spans"  # the most LLM spans open at once during the span
TRACE_ENERGY_J = SPAN_PREFIX + "trace_energy_j"  # on the root span and as a trace tag: the LLM spans' sum
TRACE_OUTPUT_TOKENS = SPAN_PREFIX + "trace_output_tokens"
TRACE_LLM_SPANS = SPAN_PREFIX + "trace_llm_spans"  # LLM spans in the trace, and how many have a figure
