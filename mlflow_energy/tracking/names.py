"""The one place that owns MLflow names: metric keys, tags, artifact files.

Metric keys are ``<section>/<name>_<unit>`` so the MLflow UI groups charts by section. They
are derived from the ``Summary`` field names (first ``_`` becomes ``/``), so result.json and
the logged metrics cannot drift apart.

Headline energy figures (``energy/total_j``, ``energy/j_per_token``...) count measured energy
only (GPU counters or sampled GPU power, RAPL). The same figure with CodeCarbon's estimated
domains added is ``energy/with_estimates_<name>`` (``WITH_ESTIMATES``). A 95% interval of a
metric is ``<metric>_ci95_low`` / ``_ci95_high`` (``interval_keys``).
"""

from __future__ import annotations

from dataclasses import asdict, fields

from mlflow_energy.bench.result import Summary

SECTIONS = ("energy", "efficiency", "emissions", "power", "throughput", "latency", "memory", "measurement", "quality")

# MLflow's run statuses (mlflow.entities.RunStatus), as its APIs and search syntax spell them.
RUN_FINISHED, RUN_FAILED, RUN_KILLED, RUN_RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"

TAG_PREFIX = "mlflow_energy."
TAG_STATUS = TAG_PREFIX + "status"
TAG_ERROR = TAG_PREFIX + "error"
TAG_CONFIG_HASH = TAG_PREFIX + "config_hash"
TAG_DEVICE = TAG_PREFIX + "device"
TAG_GPU_MODEL = TAG_PREFIX + "gpu_model"
TAG_GPU_COUNT = TAG_PREFIX + "gpu_count"
TAG_GPU_DRIVER = TAG_PREFIX + "gpu_driver"
TAG_CPU_MODEL = TAG_PREFIX + "cpu_model"
TAG_PROBLEMS = TAG_PREFIX + "warning.rejected_readings"
TAG_BELOW_NOISE_FLOOR = TAG_PREFIX + "warning.below_noise_floor"  # metrics left out, and why
TAG_HEADLINE = TAG_PREFIX + "headline"  # what the headline energy counts: measured or estimate
TAG_TRUST = TAG_PREFIX + "trust"  # "ok", or the sentences that say why the figures need care
TAG_POINT_HASH = TAG_PREFIX + "point_hash"  # config hash without the replicate number
TAG_REPLICATE = TAG_PREFIX + "replicate"
TAG_DESCRIPTION = "mlflow.note.content"  # MLflow's run description
TAG_RESULT_ID = TAG_PREFIX + "result_id"  # the measurement a run holds: logged once
TAG_LOGGING = TAG_PREFIX + "logging"  # LOGGING_COMPLETE once every metric, tag and artifact is in
LOGGING_COMPLETE = "complete"
TAG_VERSION_PREFIX = TAG_PREFIX + "version."
TAG_SWEEP_ID = TAG_PREFIX + "sweep_id"  # on the parent and every child of a sweep
TAG_SWEEP_PARENT = TAG_PREFIX + "sweep_parent"  # "true" on the parent run
TAG_SWEEP_COUNTS = TAG_PREFIX + "sweep_counts"  # "finished=4 failed=1 skipped=2 not_logged=0"
TAG_BEST_PREFIX = TAG_PREFIX + "best."  # + metric key: the best child's name and run id
TAG_MLFLOW_PARENT = "mlflow.parentRunId"  # MLflow's own nesting tag
TAG_SOURCE_PREFIX = TAG_PREFIX + "source."  # + gpu | cpu | ram

ARTIFACT_CONFIG = "config.yaml"
ARTIFACT_ENVIRONMENT = "environment.json"
ARTIFACT_TIMELINE_PLOT = "power_timeline.png"
ARTIFACT_ERROR = "error.txt"
ARTIFACT_SUMMARY_CSV = "summary.csv"
ARTIFACT_SUMMARY_HTML = "summary.html"
ARTIFACT_PARETO = "pareto.png"
ARTIFACT_SWEEP_POINTS = "sweep_points.json"

# Sweep parent metrics: how its grid points ended.
METRIC_SWEEP_POINTS = "sweep/points"
METRIC_SWEEP_FINISHED = "sweep/finished"
METRIC_SWEEP_FAILED = "sweep/failed"
METRIC_SWEEP_SKIPPED = "sweep/skipped"
METRIC_SWEEP_NOT_LOGGED = "sweep/not_logged"  # measured, kept on disk: the tracking server did not answer

WITH_ESTIMATES = "with_estimates_"  # energy/with_estimates_j_per_token: CodeCarbon estimates added
TRUST_OK = "ok"

# The axes of every efficiency comparison (report, Pareto fronts, registry).
ENERGY_PER_TOKEN = "energy/j_per_token"
THROUGHPUT = "throughput/tokens_per_s"
PERPLEXITY = "quality/perplexity"

# Metrics a sweep ranks its children by, and whether lower is better.
RANKED_METRICS = {
    ENERGY_PER_TOKEN: "min",
    "energy/gpu_net_j_per_token": "min",
    "emissions/g_co2e_per_1k_tokens": "min",
    THROUGHPUT: "max",
    "latency/ttft_s_p50": "min",
    "latency/request_s_p50": "min",
    PERPLEXITY: "min",
}


def interval_keys(metric: str) -> tuple[str, str]:
    """``energy/j_per_token`` -> its 95% interval's metric keys (low, high)."""
    return f"{metric}_ci95_low", f"{metric}_ci95_high"


def metric_key(field_name: str) -> str:
    section, _, rest = field_name.partition("_")
    if section not in SECTIONS or not rest:
        raise ValueError(f"summary field {field_name!r} has no known section prefix")
    return f"{section}/{rest}"


def summary_metrics(summary: Summary) -> dict[str, float]:
    """Metric key -> value for every figure that exists (None fields are not logged)."""
    return {metric_key(k): float(v) for k, v in asdict(summary).items() if v is not None}


def per_gpu_energy_metrics(gpu_j: dict[str, float]) -> dict[str, float]:
    """``energy/gpu0_j``, ``energy/gpu1_j``...: logged when a run spans several GPUs."""
    return {f"energy/gpu{index}_j": joules for index, joules in gpu_j.items()} if len(gpu_j) > 1 else {}


def timeline_power_metric(device: str) -> str:
    """Stepped power time series of one GPU: ``power/gpu0_w`` (step = sample number)."""
    return f"power/{device}_w"


ALL_METRIC_KEYS = tuple(metric_key(f.name) for f in fields(Summary))

# Replicates and intervals in sweep reports and the registry.
REPETITIONS = "measurement/repetitions"  # windows behind a run's own interval
