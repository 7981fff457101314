"""The run configuration in one place: the structured schema Hydra composes (a dataclass per
section, each field with its default and its docstring, from which docs/reference/config.md is
generated), the checks that need no machine, and the config hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from omegaconf import DictConfig


DTYPES = ("float32", "float16", "bfloat16")
CACHES = ("dynamic", "static")
WEIGHTS = ("pretrained", "random")
BACKENDS = ("eager", "static_compile")
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")
SCENARIOS = ("batch", "serving")
OUTPUT_LENGTHS = ("natural", "fixed")
# inference/pruning.py and inference/quantization.py ship inside every registered model, standalone,
# so they cannot import these; tests/unit/test_structure.py checks that their lists are these.
PRUNING_METHODS = ("none", "magnitude", "semi_structured")
QUANTIZATIONS = ("none", "dynamic_int8", "int8_weight_only")


class ConfigError(ValueError):
    """A user mistake in the configuration: one sentence naming the key and the fix."""


@dataclass
class PruningConfig:
    """Applied after loading, before anything is measured (inference/pruning.py).
    ``method``: none | magnitude (the smallest ``sparsity`` of each decoder linear layer's
    weights zeroed: dense kernels, no compute saved) | semi_structured (2:4 on GPUs with sparse
    tensor cores: sparsity 0.5, computed by the sparse kernels). ``drop_layers``: decoder layers
    removed, a count (the deepest ones before the last) or a list of indices; 0 keeps them all."""

    method: str = "none"
    """`none`, `magnitude` (the smallest weights of each decoder projection zeroed; dense kernels, no compute
    saved), `semi_structured` (2:4 on GPUs with sparse tensor cores, bfloat16/float16, eager backend)"""
    sparsity: float = 0.5
    """`magnitude`: the fraction of each projection's weights zeroed (above 0, below 1); `semi_structured` is
    always 0.5"""
    drop_layers: Any = 0  # int | list[int]: OmegaConf's structured configs have no unions
    """decoder layers removed: a count (the deepest ones before the last) or a list of indices (`'[1,2]'`); at
    least one layer stays"""


@dataclass
class ModelConfig:
    name: str = "tiny-stories"
    """a shipped model (`tiny-stories`, trained; `tiny-stories-distilled`, its distilled student) or
    architecture (`tiny`, `gpt2`, `qwen2.5-0.5b`, `llama-3.2-1b`, `llama-3.1-8b`), a local model folder, or a
    Hugging Face hub id"""
    weights: str = "pretrained"
    """`pretrained`: load saved weights; `random`: build from the config with random weights (no download, real
    compute)"""
    dtype: str = "float32"
    """`float32`, `float16`, `bfloat16`"""
    attn_implementation: str = "sdpa"
    """`eager`, `sdpa`, `flash_attention_2`, `flash_attention_3`, `flex_attention`"""
    quantization: str = "none"
    """`none`, `dynamic_int8` (CPU, float32: int8 nn.Linear weights, dynamic int8 activations),
    `int8_weight_only` (GPU, bfloat16/float16 activations, needs torchao)"""
    device_map: str | None = None
    """`auto`: shard the model over every visible GPU (accelerate), all of them measured"""
    revision: str | None = None
    """hub revision (branch, tag or commit)"""
    trust_remote_code: bool = False
    """allow custom model code from the hub"""
    use_safetensors: bool = True
    """load only safetensors weights"""
    seed: int = 0
    """seed for random weights and synthetic prompts"""
    pruning: PruningConfig = field(default_factory=PruningConfig)


@dataclass
class WorkloadConfig:
    prompts: str = "synthetic"
    """`synthetic` token ids, `shipped` (32 CC0 prompts), or a JSONL file with a `text` field per line"""
    batch_size: int = 4
    """prompts per generate call (batch)"""
    prompt_tokens: int = 64
    """prompt length; text prompts are truncated or left-padded to it"""
    new_tokens: int = 32
    """tokens generated per prompt, exactly (batch; serving: `serving.max_tokens`)"""


@dataclass
class BackendConfig:
    name: str = "eager"
    """`eager` (PyTorch eager execution) or `static_compile` (static KV cache + `torch.compile` of the decoding
    step, CUDA graphs on a GPU; compiled in the warm-up, and cached for the next run of the shape under
    `~/.cache/mlflow-energy/torchinductor`, or `$TORCHINDUCTOR_CACHE_DIR`)"""
    cache: str = "dynamic"
    """KV cache: `dynamic` (grows each token) or `static` (preallocated to the full length)"""


@dataclass
class QualityConfig:
    enabled: bool = True
    """compute perplexity after the energy windows"""
    dataset: str = "shipped"
    """`shipped` (CC0 held-out stories), a text file, or `hf:NAME[:CONFIG]:SPLIT` (needs `datasets`)"""
    max_tokens: int = 4096
    """evaluated tokens, at most"""
    context_tokens: int = 256
    """window length (capped at the model's maximum positions)"""
    batch_size: int = 8
    """windows per forward pass"""


@dataclass
class BenchConfig:
    warmup_runs: int = 1
    """warm-up calls identical to the measured call"""
    min_repetitions: int = 3
    """measured generate windows, at least"""
    min_duration_s: float = 5.0
    """measured generate time, at least"""
    # Windows continue until the 95% interval of the headline J/token is at most target_ci of it
    # (half-width / value), or until max_duration_s of measured windows.
    target_ci: float = 0.02
    """windows continue until the 95% interval of the headline J/token is within this fraction of it"""
    max_duration_s: float = 20.0
    """or until this much measured window time per process (the run is then flagged as noisy)"""
    # Independent benchmark processes per run (scenario=batch): each loads, warms up and measures
    # on its own, as a repeat of the run would. A process keeps its own level for its whole life
    # (seen on an H100: three runs 5% apart, each +-0.5%), so from 3 processes the J/token and
    # tokens/s intervals are where a repeat of the run lands; with 1 or 2, they are one process's
    # windows and say so.
    processes: int = 3
    """independent benchmark processes per run (`scenario=batch`), each loading, warming up and measuring on its
    own; from 3, the J/token and tokens/s intervals are where a repeat of the run lands ([Metrics, "What an
    interval covers"](metrics.md#what-an-interval-covers))"""
    # Where the headline is CodeCarbon's estimate (no measured energy source, as on a CPU without
    # RAPL), processes after the first repeat a model of the machine, not a measurement: this many.
    estimate_processes: int = 1
    """benchmark processes of a run whose headline is CodeCarbon's estimate (no measured source, as on a CPU
    without RAPL): more would repeat a model, not a measurement"""
    min_window_s: float = 1.0
    """each window repeats its call until it lasts this long (NVML counters update about every 100 ms)"""
    align_to_counter: bool = True
    """GPU window edges wait for the energy counter's next update"""
    idle_s: float = 2.0
    """idle baseline length; `0` skips it (no net figures)"""
    timeout_s: float = 1800.0
    """the child process is stopped after this many seconds"""
    sample_period_s: float = 0.1
    """power timeline period: GPU power and SM clock every tick; temperature, utilisation, memory and the host
    row once a second"""
    # Before the workload, a GPU run waits cooldown_s, then until the GPU is below
    # cooldown_below_c (null: no temperature wait), for at most cooldown_max_s.
    cooldown_s: float = 0.0
    """GPU: fixed wait before the workload"""
    cooldown_below_c: float | None = 60.0
    """GPU: then wait until every measured GPU is below this temperature (`null`: don't)"""
    cooldown_max_s: float = 60.0
    """at most this long for the temperature wait"""
    resume: bool = True
    """in a sweep, skip grid points already FINISHED with the same config hash"""


@dataclass
class SweepConfig:
    """``replicates``: how many times a multirun measures each grid point, in a shuffled order
    (``shuffle_seed``), so slow drift of a shared machine spreads over every point.
    ``replicate``: which replicate a job is (set by the sweeper; part of the config hash).
    ``gpus_per_job`` / ``cpus_per_job``: what each job asks a Ray or SLURM cluster for (null:
    one GPU for a GPU point, none for a CPU point; the engine's default CPUs)."""

    replicates: int = 1
    """in a multirun, measure each grid point this many times, in shuffled rounds"""
    shuffle_seed: int = 0
    """seed of the rounds' order (the same seed, the same order)"""
    replicate: int = 0
    """set by the sweeper: which replicate a job is (part of the config hash)"""
    gpus_per_job: int | None = None
    """on Ray or SLURM, the GPUs each job asks for (null: one for a GPU point, none for a CPU point); not part
    of the config hash"""
    cpus_per_job: int | None = None
    """on Ray or SLURM, the CPUs each job asks for (null: the engine's default); not part of the config hash"""


@dataclass
class ServingConfig:
    """``scenario=serving``: an OpenAI-compatible server under load (docs/how-to/serving.md).

    ``url`` null starts ``transformers serve`` with the run's model on 127.0.0.1; a URL
    (``http://127.0.0.1:8000/v1``) attaches to a server the user runs, measuring the GPUs of
    this host listed in ``gpus`` (CUDA indices; null: every visible one).
    ``concurrency`` caps the requests in flight; with ``request_rate`` null it is a closed loop
    of that many users, else arrivals are Poisson at ``request_rate`` requests/s (open loop).
    The steady state (after ``ramp_up_s``; null: until the first request completes) is measured
    in windows of ``window_s`` for ``duration_s``, or until ``num_requests`` requests completed
    in it. ``slo_*``: bounds a request must meet to count towards goodput (null: no bound)."""

    url: str | None = None
    """attach to this OpenAI base URL (`http://127.0.0.1:8000/v1`); `null`: start `transformers serve`"""
    model_name: str | None = None
    """the model requests name; `null`: the one the server lists"""
    gpus: list[int] | None = None
    """attach mode: CUDA indices of this host to measure; `null`: every visible GPU"""
    concurrency: int = 4
    """requests in flight at most: a closed loop of this many users, or the cap of an open loop"""
    request_rate: float | None = None
    """Poisson arrivals per second (open loop); `null`: closed loop"""
    duration_s: float = 20.0
    """steady state measured for this long..."""
    num_requests: int | None = None
    """...or until this many requests completed inside it"""
    warmup_requests: int | None = None
    """requests sent at full load before the measurement; `null`: `serving.concurrency`"""
    # Each request's max_tokens: drawn from chat-like lengths (chat), all max_tokens (same), or a
    # JSONL file of {"output_tokens": N, "prompt_tokens": M} (inference/lengths.py).
    lengths: str = "chat"
    """each request's length: `chat` (drawn, LMSYS-Chat-1M's means), `same` (`max_tokens` each), or a JSONL file
    of `{"output_tokens": N, "prompt_tokens": M}`"""
    # The cap on every request's length; null: what the model's positions leave after the
    # longest prompt (1024 where the tool cannot read the model's positions).
    max_tokens: int | None = None
    """output tokens per request, at most (null: what the model's positions leave after the prompt; 1024 for an
    attached server's model)"""
    output_length: str = "natural"
    """`natural` (the model stops, capped by `max_tokens`) or `fixed` (exactly `max_tokens`; attached servers
    that honour `min_tokens`/`ignore_eos`)"""
    continuous_batching: bool = True
    """`transformers serve --continuous-batching`"""
    # More arguments for the managed `transformers serve`: ["--cb-num-blocks", "256"] sizes the
    # continuous-batching cache (its default sizing took 18 s on a CPU's first request).
    server_args: list[str] = field(default_factory=list)
    """more arguments for the server the tool starts: `'serving.server_args=["--cb-num-blocks","256"]'` (the
    options it sets from the run's config are refused)"""
    ramp_up_s: float | None = None
    """excluded before the first window; `null`: until the first request completes"""
    window_s: float = 2.0
    """steady-state window length (the intervals' samples)"""
    startup_timeout_s: float = 600.0
    """the managed server must answer `/health` within this"""
    request_timeout_s: float = 300.0
    """one request's timeout; also how long the drain waits"""
    max_error_share: float = 0.05
    """the run fails when a larger share of its requests fail"""
    slo_ttft_s: float | None = None
    """bounds a request must meet to count towards goodput (`null`: no bound)"""
    slo_tpot_ms: float | None = None
    """bounds a request must meet to count towards goodput (`null`: no bound)"""
    slo_request_s: float | None = None
    """bounds a request must meet to count towards goodput (`null`: no bound)"""


@dataclass
class CarbonConfig:
    country_iso_code: str = "USA"
    """ISO 3166-1 alpha-3 country for grid carbon intensity"""
    region: str | None = None
    """region (for example `california`) where CodeCarbon has regional data"""
    pue: float = 1.0
    """data-centre power usage effectiveness; multiplies emissions"""


@dataclass
class TrackingConfig:
    uri: str = "sqlite:///mlflow.db"
    """MLflow tracking URI"""
    experiment: str = "mlflow-energy"
    """MLflow experiment name; a single run under `mlflow run` fills the run `mlflow run` made, in its
    `--experiment-name` (else MLflow's `Default`)"""
    run_name: str | None = None
    """MLflow run name (MLflow picks one when null); under `mlflow run` it renames the run filled in"""
    # How long a run (each point of a sweep) waits for a tracking server that does not answer
    # before it keeps its result on disk and goes on.
    wait_s: float = 10.0
    """seconds a run (each point of a sweep) waits for a tracking server that does not answer before its result
    is kept on disk (see [What happens when things fail](../how-to/failures.md))"""


@dataclass
class RegisterConfig:
    """Register the sweep's most efficient model when it ends (``mlflow-energy register`` does
    the same on demand). ``max``/``min``: constraints as ``METRIC=NUMBER`` strings."""

    enabled: bool = False
    """at the end of a sweep, register its most efficient qualifying model"""
    name: str | None = None
    """registered model name (required when enabled)"""
    metric: str = "energy/j_per_token"  # names.ENERGY_PER_TOKEN
    """metric to optimise"""
    direction: str = "auto"
    """`auto`, `min` or `max`"""
    alias: str = "efficient"
    """alias of the champion version"""
    max: list[str] = field(default_factory=list)
    """constraints, `METRIC=NUMBER` strings: `'register.max=["quality/perplexity=12"]'`"""
    min: list[str] = field(default_factory=list)
    """constraints, `METRIC=NUMBER` strings: `'register.max=["quality/perplexity=12"]'`"""
    reference: bool = False
    """hub models: record hub id and revision instead of copying weights"""
    allow_overlap: bool = False
    """move the champion alias on a better value even when the two 95% intervals overlap"""


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    carbon: CarbonConfig = field(default_factory=CarbonConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    register: RegisterConfig = field(default_factory=RegisterConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    scenario: str = "batch"
    """`batch` (one fixed-shape generate call, repeated) or `serving` (a server under load; see
    [Serving](../how-to/serving.md))"""
    device: str = "auto"
    """`auto` (first GPU if any, else CPU), `cpu`, `cuda`, `cuda:N`"""


def register_schema() -> None:
    """Makes ``schema`` (the first entry of conf/config.yaml's defaults) type-check every key."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="schema", node=RunConfig)


def config_dir() -> Path:
    """conf/ of a source checkout, else the copy installed inside the package (a folder beside
    this file: ``mlflow_energy.conf`` has no ``__init__.py``, and importlib.resources would
    describe such a namespace package by a MultiplexedPath that Hydra cannot open)."""
    package = Path(__file__).resolve().parent
    source = package.parent / "conf"
    return source if (source / "config.yaml").is_file() else package / "conf"


def to_run_config(cfg: DictConfig | dict[str, Any]) -> RunConfig:
    """Typed copy of a resolved Hydra config (``hydra`` node and unknown keys dropped)."""
    # to_container and to_object are typed for any node; a DictConfig gives a dict, a structured
    # RunConfig node gives a RunConfig.
    from omegaconf import DictConfig, OmegaConf  # here: importing the schema stays cheap (MLflow plugins)

    data = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True)) if isinstance(cfg, DictConfig) else dict(cfg)
    data = {k: v for k, v in data.items() if k in RunConfig.__dataclass_fields__}
    schema = OmegaConf.structured(RunConfig)
    merged = OmegaConf.merge(schema, data)
    return cast(RunConfig, OmegaConf.to_object(merged))


def as_dict(config: RunConfig) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return cast(dict[str, Any], OmegaConf.to_container(OmegaConf.structured(config), resolve=True))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"name": "x"}}`` -> ``{"model.name": "x"}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# Keys that change where results go, not what is measured: left out of the config hash.
_NOT_HASHED = ("tracking.", "register.", "bench.timeout_s", "bench.resume", "sweep.replicates", "sweep.shuffle_seed",
               "sweep.gpus_per_job", "sweep.cpus_per_job")
REPLICATE_KEY = "sweep.replicate"
PLAN_PREFIX = "sweep."  # sweep.replicates, sweep.shuffle_seed, sweep.replicate: how to sweep, not what


def not_applicable(config: RunConfig) -> tuple[str, ...]:
    """Key prefixes the run does not use: left out of its params and its config hash (so a
    batch run's hash is the one it had before serving or pruning keys existed)."""
    unpruned = ("model.pruning.",) if not pruning_on(config.model.pruning) else ()
    if config.scenario == "batch":
        return ("serving.", "scenario", *unpruned)
    return ("workload.batch_size", "workload.new_tokens", "backend.", "quality.", "bench.min_repetitions",
            "bench.min_duration_s", "bench.max_duration_s", "bench.min_window_s", "bench.warmup_runs", *unpruned)


def pruning_on(pruning: PruningConfig) -> bool:
    return pruning_applies(pruning.method, pruning.drop_layers)


def pruning_applies(method: str, drop_layers: Any) -> bool:
    """Whether this pruning changes the model: a method, or decoder layers to remove."""
    return method != "none" or drop_layers not in (0, [])


def _digest(config: RunConfig, leave_out: tuple[str, ...]) -> str:
    leave_out += not_applicable(config)
    flat = {k: v for k, v in flatten(as_dict(config)).items() if not k.startswith(leave_out)}
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:12]


def config_hash(config: RunConfig) -> str:
    """Stable 12-hex digest of what is measured (model, workload, backend, bench, device), the
    replicate number included: each replicate is measured (and resumed) on its own."""
    return _digest(config, _NOT_HASHED)


def point_hash(config: RunConfig) -> str:
    """The config hash without the replicate number: the replicates of one grid point share it."""
    return _digest(config, (*_NOT_HASHED, REPLICATE_KEY))


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate(config: RunConfig) -> None:
    """The checks that need no machine, no model and no input file; ConfigError on the first
    mistake (inference/hardware_support.py checks what this machine can run, inference/inputs.py
    the files the configuration names)."""
    _validate_choices(config)
    _validate_sizes(config)
    _validate_serving(config)
    _validate_bench(config.bench)
    _validate_tracking(config)
    require(config.carbon.pue >= 1.0, f"carbon.pue={config.carbon.pue} must be at least 1.0 (1.0 = no overhead).")
    _validate_country(config.carbon.country_iso_code)


def _require_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    require(value in choices, f"{key}={value!r} is not one of {', '.join(choices)}; pick one.")


def _validate_choices(config: RunConfig) -> None:
    m = config.model
    _require_choice("model.pruning.method", m.pruning.method, PRUNING_METHODS)
    drop = m.pruning.drop_layers
    well_formed = (isinstance(drop, int) and not isinstance(drop, bool) and drop >= 0) or (
        isinstance(drop, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in drop))  # fmt: skip
    require(well_formed, f"model.pruning.drop_layers={drop!r} must be a count (0 or more) or a list of decoder layer "
            "indices, such as 2 or [1,2].")  # fmt: skip
    _require_choice("model.weights", m.weights, WEIGHTS)
    _require_choice("model.dtype", m.dtype, DTYPES)
    _require_choice("model.attn_implementation", m.attn_implementation, ATTN_IMPLEMENTATIONS)
    _require_choice("model.quantization", m.quantization, QUANTIZATIONS)
    _require_choice("backend.name", config.backend.name, BACKENDS)
    _require_choice("backend.cache", config.backend.cache, CACHES)
    _require_choice("scenario", config.scenario, SCENARIOS)


def _validate_sizes(config: RunConfig) -> None:
    w, q = config.workload, config.quality
    for key, value in (("workload.batch_size", w.batch_size), ("workload.prompt_tokens", w.prompt_tokens),
                       ("workload.new_tokens", w.new_tokens), ("quality.batch_size", q.batch_size)):  # fmt: skip
        require(value >= 1, f"{key}={value} must be at least 1; set it to a positive integer.")
    for key, value in (("quality.max_tokens", q.max_tokens), ("quality.context_tokens", q.context_tokens)):
        require(value >= 2, f"{key}={value} must be at least 2 (one token predicts the next).")


_SERVER_ARGS_OWNED = ("--host", "--port", "--device", "--dtype", "--continuous-batching", "--no-continuous-batching")


def _validate_serving(config: RunConfig) -> None:
    """The serving section, checked whatever the scenario (a sweep may switch it on)."""
    v = config.serving
    require(v.concurrency >= 1, f"serving.concurrency={v.concurrency} must be at least 1; set it to a positive "
             "integer.")  # fmt: skip
    require(v.max_tokens is None or v.max_tokens >= 1, f"serving.max_tokens={v.max_tokens} must be at least 1, or "
             "null (what the model's positions leave).")  # fmt: skip
    for key, number in (("serving.duration_s", v.duration_s), ("serving.window_s", v.window_s),
                        ("serving.startup_timeout_s", v.startup_timeout_s),
                        ("serving.request_timeout_s", v.request_timeout_s), ("serving.request_rate", v.request_rate),
                        ("serving.slo_ttft_s", v.slo_ttft_s), ("serving.slo_tpot_ms", v.slo_tpot_ms),
                        ("serving.slo_request_s", v.slo_request_s)):  # fmt: skip
        require(number is None or number > 0, f"{key}={number} must be positive (or null where that is allowed).")
    for key, count in (("serving.num_requests", v.num_requests), ("serving.warmup_requests", v.warmup_requests)):
        require(count is None or count >= 1, f"{key}={count} must be at least 1, or null.")
    require(v.ramp_up_s is None or v.ramp_up_s >= 0, f"serving.ramp_up_s={v.ramp_up_s} must be 0 or more, or null.")
    require(0 <= v.max_error_share < 1, f"serving.max_error_share={v.max_error_share} must be a fraction from 0 "
             "to below 1, such as 0.05.")  # fmt: skip
    _require_choice("serving.output_length", v.output_length, OUTPUT_LENGTHS)
    require(v.url is None or v.url.startswith(("http://", "https://")),
             f"serving.url={v.url!r} is not an http(s) URL; give the server's OpenAI base URL, such as "
             "http://127.0.0.1:8000/v1.")  # fmt: skip
    require(v.url is None or not v.server_args, "serving.server_args are for the server the tool starts; with "
             "serving.url your server is already running, so drop them.")  # fmt: skip
    owned = [a for a in v.server_args if a.split("=")[0] in _SERVER_ARGS_OWNED]
    require(not owned, f"serving.server_args sets {', '.join(owned)}, which the tool sets itself from the run's "
             "configuration (host, port, device, model.dtype, serving.continuous_batching); drop it.")  # fmt: skip
    if config.scenario != "serving":
        return
    require(config.backend.name == "eager", f"backend.name={config.backend.name} applies to scenario=batch; "
             "a serving run measures the server's own engine, so leave backend.name=eager.")  # fmt: skip
    if v.url is None:
        require(config.model.device_map is None, "model.device_map=auto shards a model the tool loads itself; "
                 "transformers serve loads one device, so drop model.device_map for scenario=serving.")  # fmt: skip
        require(config.model.quantization == "none", f"model.quantization={config.model.quantization} applies to "
                 "scenario=batch; transformers serve loads the model itself, so use model.quantization=none.")
        require(not pruning_on(config.model.pruning), "model.pruning applies to scenario=batch; transformers serve "
                 "loads the model itself, so drop the model.pruning keys.")  # fmt: skip
        require(v.output_length == "natural", "serving.output_length=fixed needs a server that honours min_tokens "
                 "and ignore_eos (vLLM, SGLang); transformers serve refuses them, so use serving.output_length=natural "
                 "or attach to such a server with serving.url.")  # fmt: skip


def _validate_tracking(config: RunConfig) -> None:
    """Where results go: the tracking wait, the sweep plan, registration."""
    require(config.tracking.wait_s >= 0, f"tracking.wait_s={config.tracking.wait_s} must be 0 or more seconds.")
    require(config.sweep.replicates >= 1, f"sweep.replicates={config.sweep.replicates} must be at least 1.")
    require(config.sweep.replicate >= 0, f"sweep.replicate={config.sweep.replicate} must be 0 or more.")
    gpus, cpus = config.sweep.gpus_per_job, config.sweep.cpus_per_job
    require(gpus is None or gpus >= 0, f"sweep.gpus_per_job={gpus} must be 0 or more, or null (one per GPU point).")
    require(cpus is None or cpus >= 1, f"sweep.cpus_per_job={cpus} must be 1 or more, or null (the engine's default).")
    require(
        not config.register.enabled or bool(config.register.name),
        "register.enabled=true needs register.name, the registered model's name; set register.name=NAME.",
    )
    require(
        config.register.direction in ("auto", "min", "max"),
        f"register.direction={config.register.direction!r} is not auto, min or max; pick one.",
    )


def _validate_bench(b: BenchConfig) -> None:
    require(b.min_repetitions >= 1, f"bench.min_repetitions={b.min_repetitions} must be at least 1; "
             "set it to a positive integer.")  # fmt: skip
    require(b.processes >= 1, f"bench.processes={b.processes} must be at least 1; 3 or more give an interval "
             "that covers a repeat of the run.")  # fmt: skip
    require(b.estimate_processes >= 1, f"bench.estimate_processes={b.estimate_processes} must be at least 1.")
    require(b.warmup_runs >= 1, f"bench.warmup_runs={b.warmup_runs} must be at least 1: "
             "a run without an identical warm-up measures compilation and caching, not inference.")
    for key, value in (
        ("bench.min_duration_s", b.min_duration_s),
        ("bench.min_window_s", b.min_window_s),
        ("bench.timeout_s", b.timeout_s),
        ("bench.sample_period_s", b.sample_period_s),
    ):
        require(value > 0, f"{key}={value} must be positive; set a number of seconds above 0.")
    for key, value in (("bench.idle_s", b.idle_s), ("bench.cooldown_s", b.cooldown_s),
                       ("bench.cooldown_max_s", b.cooldown_max_s)):  # fmt: skip
        require(value >= 0, f"{key}={value} must be 0 or more seconds.")
    require(0 < b.target_ci < 1, f"bench.target_ci={b.target_ci} must be a fraction between 0 and 1, "
             "such as 0.02 for an interval within 2% of the value.")
    require(b.max_duration_s >= b.min_duration_s, f"bench.max_duration_s={b.max_duration_s} is below "
             f"bench.min_duration_s={b.min_duration_s}; raise it or lower bench.min_duration_s.")


def _validate_country(code: str) -> None:
    from mlflow_energy.adapters.codecarbon import known_countries

    require(
        code.upper() in known_countries(),
        f"carbon.country_iso_code={code!r} is not a country CodeCarbon has grid data for; "
        "use an ISO 3166-1 alpha-3 code such as USA, FRA or DEU.",
    )
