"""The ``energy`` model evaluator: ``mlflow.models.evaluate(model_uri, data, model_type="text",
evaluators=["energy"])`` measures the model's ``predict`` on the evaluation data and logs what
it cost to the evaluation run.

Loaded by MLflow from the ``mlflow.model_evaluator`` entry point ``energy`` (pyproject.toml).
The rows are predicted in batches (``batch_size``, default 1: one request per row), each call
inside a window of the project's own meter (NVML counters for the model's GPUs, CodeCarbon for
CPU and RAM), after unmeasured warm-up calls. The figures take a measurement run's metric keys
and its rule: the headline counts measured domains only, estimates are added in
``energy/with_estimates_*`` (docs/reference/metrics.md, "Measured first" and "Evaluating a registered
model"); they cover whole ``predict`` calls on real prompts, not the benchmark's fixed-length
generate calls. Measuring never fails an evaluation: a meter that does not start or breaks is
warned about once, named in the trust tag, and what was measured until then is logged. A model
whose ``predict`` fails still fails it, as with any evaluator.

``evaluator_config`` (``evaluator_config={"energy": {...}}`` with a list of evaluators):
    batch_size: rows per ``predict`` call, each call one measured window (default 1).
    warmup_calls: unmeasured calls on the first batch before the windows (default 1).
    tokenizer: counts the tokens of the outputs, for J/token: a tokenizer object (``encode``)
        or a name or folder for ``transformers.AutoTokenizer``. Default: the model's own
        (``tokenizer`` of its Python model, as the registered text generator has).
    gpus: ``"auto"`` (the GPU the model reports as its ``device``, else every visible GPU;
        none without CUDA), ``"none"``, or a list of CUDA indices.
    country_iso_code, region: CodeCarbon's location (defaults of ``carbon.*``).
    align_to_counter: GPU window edges wait for the counter's next step (default true).
    sample_period_s: GPU power sampling period (default 0.1 s).
"""

from __future__ import annotations

import functools
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator

from mlflow_energy.bench.result import Summary
from mlflow_energy.bench.stats import MIN_SAMPLES, percentile, positive_interval
from mlflow_energy.bench.summary import energy_figures, estimate_warning, headline_domains
from mlflow_energy.config import CarbonConfig
from mlflow_energy.meter.energy_meter import EnergyMeter, open_meter
from mlflow_energy.meter.measurement import DOMAINS, EnergySource, Measurement
from mlflow_energy.store import names

log = logging.getLogger(__name__)

EVALUATOR_NAME = "energy"  # the entry point's name: evaluators=["energy"]
MODEL_TYPES = (None, "text")


@dataclass
class EnergyEvaluatorConfig:
    """The evaluator's settings (module docstring)."""

    batch_size: int = 1
    warmup_calls: int = 1
    tokenizer: Any = None
    gpus: Any = "auto"
    country_iso_code: str = CarbonConfig.country_iso_code
    region: str | None = CarbonConfig.region
    align_to_counter: bool = True
    sample_period_s: float = 0.1

    @classmethod
    def from_dict(cls, config: dict[str, Any] | None) -> EnergyEvaluatorConfig:
        """A user mistake is one sentence, before anything is measured."""
        from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise MlflowException(f"energy evaluator: unknown setting(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(sorted(known))}.", INVALID_PARAMETER_VALUE)  # fmt: skip
        settings = cls(**config)
        if not isinstance(settings.batch_size, int) or settings.batch_size < 1:
            raise MlflowException(f"energy evaluator: batch_size must be a positive integer, not "
                                  f"{settings.batch_size!r}.", INVALID_PARAMETER_VALUE)  # fmt: skip
        if not isinstance(settings.warmup_calls, int) or settings.warmup_calls < 0:
            raise MlflowException(f"energy evaluator: warmup_calls must be 0 or more, not "
                                  f"{settings.warmup_calls!r}.", INVALID_PARAMETER_VALUE)  # fmt: skip
        gpus = settings.gpus
        if gpus not in ("auto", "none") and not (isinstance(gpus, list) and all(isinstance(i, int) for i in gpus)):
            raise MlflowException(f"energy evaluator: gpus must be \"auto\", \"none\" or a list of CUDA indices, "
                                  f"not {gpus!r}.", INVALID_PARAMETER_VALUE)  # fmt: skip
        return settings


@dataclass
class Call:
    """One measured ``predict`` call: its rows, wall time, window and the tokens of its outputs."""

    name: str
    rows: int
    seconds: float
    measurement: Measurement | None = None
    tokens: int | None = None

    def counts(self) -> bool:
        """Its energy counts: measured, no reading rejected, at least one domain."""
        return self.measurement is not None and self.measurement.valid and bool(self.measurement.sources())


@dataclass
class Notes:
    """Why the figures need care. The first measuring failure is warned about; every note ends
    in the trust tag."""

    warnings: list[str] = field(default_factory=list)
    _warned: bool = False

    def failed(self, sentence: str) -> None:
        if not self._warned:
            log.warning("Energy evaluation: %s. The evaluation goes on and logs what was measured.", sentence)
            self._warned = True
        self.warnings.append(sentence)


class EnergyEvaluator(ModelEvaluator):
    """``mlflow.models.evaluate(..., evaluators=["energy"])``: energy, latency and the energy
    sources of the model's ``predict`` on the evaluation data."""

    @classmethod
    def can_evaluate(cls, *, model_type: str | None, evaluator_config: dict[str, Any] | None, **kwargs: Any) -> bool:
        return model_type in MODEL_TYPES

    def evaluate(
        self,
        *,
        model_type: str | None,
        dataset: Any,
        run_id: str,
        evaluator_config: dict[str, Any] | None,
        model: Any = None,
        extra_metrics: Any = None,
        custom_artifacts: Any = None,
        predictions: str | None = None,
        **kwargs: Any,
    ) -> EvaluationResult:
        config = EnergyEvaluatorConfig.from_dict(evaluator_config)
        notes = Notes()
        if model is None:
            notes.failed("no model to run (the predictions came with the data): nothing was measured")
            _log(run_id, {}, _tags({}, [], notes), None, dataset, kwargs.get("model_id"))
            return EvaluationResult({}, {}, run_id)
        features = dataset.features_data
        python_model = _python_model(model)
        tokenizer = _tokenizer(config.tokenizer, python_model, notes)
        with tempfile.TemporaryDirectory(prefix="mlflow-energy-eval-") as scratch:
            meter = _open_meter(config, python_model, Path(scratch), notes)
            hardware = _hardware(meter)
            sources = _sources(meter)
            try:
                calls = _measure(model, features, config, meter, notes, predictions, tokenizer)
            finally:
                if meter is not None:
                    _close(meter, notes)
        metrics = figures(calls)
        tags = _tags(sources, calls, notes) | hardware
        record = _record(config, sources, calls, notes, len(features))
        artifact = _log(run_id, metrics, tags, record, dataset, kwargs.get("model_id"))
        return EvaluationResult(metrics, {"energy_evaluation": artifact} if artifact else {}, run_id)


# --- the model and its tokenizer --------------------------------------------------------------


def _python_model(model: Any) -> Any | None:
    """The Python model inside a pyfunc (the registered text generator), or None."""
    try:
        return model.unwrap_python_model()
    except Exception:  # not a PythonModel flavour
        return None


def _tokenizer(setting: Any, python_model: Any | None, notes: Notes) -> Any | None:
    if setting is None:
        return getattr(python_model, "tokenizer", None)
    if not isinstance(setting, (str, Path)):
        return setting
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(setting))
    except Exception as exc:
        notes.failed(f"tokenizer {str(setting)!r} did not load ({type(exc).__name__}: {str(exc)[:200]}): no J/token")
        return None


def count_tokens(tokenizer: Any, texts: list[str]) -> int:
    """Tokens of the output texts as ``tokenizer`` encodes them, special tokens left out."""
    total = 0
    for text in texts:
        try:
            total += len(tokenizer.encode(text, add_special_tokens=False))
        except TypeError:  # an encode without that keyword
            total += len(tokenizer.encode(text))
    return total


def output_texts(output: Any, column: str | None = None) -> list[str] | None:
    """The outputs as one text per row, or None when they are not text."""
    if hasattr(output, "columns"):  # a pandas DataFrame
        if column is None and len(output.columns) != 1:
            return None
        output = output[column if column is not None else output.columns[0]]
    if isinstance(output, str):
        output = [output]
    try:
        values = list(output)
    except TypeError:
        return None
    return values if all(isinstance(v, str) for v in values) else None


# --- measuring --------------------------------------------------------------------------------


def _gpus(config: EnergyEvaluatorConfig, python_model: Any | None) -> tuple[list[int] | str, Callable[[], None]]:
    """The GPUs to measure (as bench/protocol.py's ``_meter_for`` picks them), or why none is,
    and the sync."""
    if config.gpus == "none":
        return "gpus=none", _no_sync
    try:
        import torch
    except ImportError:
        return "torch is not installed", _no_sync
    if not torch.cuda.is_available():
        return "no CUDA device: the model runs on the CPU", _no_sync
    device = str(getattr(python_model, "device", ""))
    if isinstance(config.gpus, list):
        return config.gpus, torch.cuda.synchronize
    if device.startswith("cuda"):
        return [int(device.partition(":")[2] or 0)], torch.cuda.synchronize
    if device == "cpu":
        return "the model runs on the CPU", _no_sync
    return list(range(torch.cuda.device_count())), torch.cuda.synchronize


def _no_sync() -> None:
    return None


def _open_meter(config: EnergyEvaluatorConfig, python_model: Any | None, scratch: Path, notes: Notes
                ) -> EnergyMeter | None:  # fmt: skip
    def failed(part: str, exc: Exception) -> None:
        if part == "gpus":
            notes.failed(f"the GPUs could not be measured ({type(exc).__name__}: {str(exc)[:200]})")
        else:
            notes.failed(f"CodeCarbon did not start ({type(exc).__name__}: {str(exc)[:200]}): CPU and RAM not measured")

    gpus: list[int] | str
    try:
        gpus, sync = _gpus(config, python_model)
    except Exception as exc:
        failed("gpus", exc)
        gpus, sync = str(exc), _no_sync
    try:
        return open_meter(scratch / "codecarbon", config.country_iso_code, config.region, gpus, sync,
                          config.sample_period_s, config.align_to_counter, on_failure=failed)  # fmt: skip
    except Exception as exc:
        notes.failed(f"the energy meter did not start ({type(exc).__name__}: {str(exc)[:200]}): latency only")
        return None


def _close(meter: EnergyMeter, notes: Notes) -> None:
    try:
        meter.close()
    except Exception as exc:
        notes.failed(f"the energy meter did not close cleanly ({type(exc).__name__}: {str(exc)[:200]})")


def _batches(features: Any, size: int) -> list[Any]:
    rows = len(features)
    take = features.iloc if hasattr(features, "iloc") else features
    return [take[start : start + size] for start in range(0, rows, size)]


def _measure(model: Any, features: Any, config: EnergyEvaluatorConfig, meter: EnergyMeter | None, notes: Notes,
             column: str | None, tokenizer: Any | None) -> list[Call]:  # fmt: skip
    """Warm-up calls on the first batch, then one window per batch. A meter that breaks is
    dropped (the rest is timed only); an error of ``predict`` itself propagates."""
    batches = _batches(features, config.batch_size)
    for _ in range(config.warmup_calls if batches else 0):
        model.predict(batches[0])
    calls: list[Call] = []
    texts_missing = False
    for index, batch in enumerate(batches):
        name = f"predict_{index + 1}"
        output, seconds, measurement, meter = _window(meter, name, functools.partial(model.predict, batch), notes)
        call = Call(name, len(batch), seconds, measurement)
        texts = output_texts(output, column) if tokenizer is not None else None
        if texts is not None and tokenizer is not None:
            call.tokens = count_tokens(tokenizer, texts)
        elif tokenizer is not None:
            texts_missing = True
        calls.append(call)
    if tokenizer is None:
        log.info("Energy evaluation: no tokenizer known, so no J/token; pass evaluator_config "
                 "{'energy': {'tokenizer': NAME_OR_PATH}} for one.")  # fmt: skip
    elif texts_missing:
        log.info("Energy evaluation: the model's outputs are not one text per row, so no J/token.")
    return calls


def _window(meter: EnergyMeter | None, name: str, predict: Callable[[], Any], notes: Notes
            ) -> tuple[Any, float, Measurement | None, EnergyMeter | None]:  # fmt: skip
    """(output, seconds, measurement, the meter for the next call). The call runs once, inside
    the window where the meter works; its own exception is raised after the window closed."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        start = time.perf_counter()
        try:
            outcome["output"] = predict()
        except Exception as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.perf_counter() - start

    measurement = None
    if meter is not None:
        try:
            with meter.window(name) as handle:
                run()
            measurement = handle.measured()
        except Exception as exc:
            notes.failed(f"measuring failed in window {name} ({type(exc).__name__}: {str(exc)[:200]}); "
                         "the later calls are timed only")  # fmt: skip
            _close(meter, notes)
            meter = None
    if "seconds" not in outcome:  # the meter failed before the call ran
        run()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["output"], outcome["seconds"], measurement, meter


# --- figures ----------------------------------------------------------------------------------


def figures(calls: list[Call]) -> dict[str, float]:
    """Metric key -> value. Latency and speed count every call; energy the calls whose window
    counts, over the headline domains (measured ones; every domain when none is measured);
    J/token where every such call's outputs were counted."""
    if not calls:
        return {}
    s = Summary()
    seconds = [c.seconds for c in calls]
    duration = sum(seconds)
    s.latency_request_s_p50, s.latency_request_s_p90 = percentile(seconds, 50), percentile(seconds, 90)
    if duration > 0:
        s.throughput_requests_per_s = sum(c.rows for c in calls) / duration
        if all(c.tokens is not None for c in calls):
            s.throughput_tokens_per_s = sum(c.tokens or 0 for c in calls) / duration
    counted = [c for c in calls if c.counts()]
    s.measurement_rejected_windows = sum(1 for c in calls if c.measurement is not None and not c.measurement.valid)
    if not counted:
        return names.summary_metrics(s)
    windows = [c.measurement for c in counted if c.measurement is not None]
    domains, _ = headline_domains(windows[0])
    requests = sum(c.rows for c in counted)
    tokens = [c.tokens for c in counted]
    generated = sum(t or 0 for t in tokens) if all(t is not None for t in tokens) else None
    s = replace(s, **energy_figures(windows, domains, generated, requests))
    s.measurement_requests, s.measurement_repetitions = requests, len(counted)
    s.measurement_duration_s = sum(w.duration_s for w in windows)
    s.measurement_window_s = s.measurement_duration_s / len(windows)
    metrics = {}
    if generated:
        s.measurement_generated_tokens = generated
        assert s.energy_j_per_token is not None  # energy_figures sets it for a positive token count
        per_token = [c.measurement.energy_j(domains) / c.tokens for c in counted if c.measurement and c.tokens]
        interval = positive_interval(per_token, s.energy_j_per_token) if len(per_token) == len(counted) else None
        if interval is not None:
            s.energy_j_per_token_ci95_low, s.energy_j_per_token_ci95_high = interval.low, interval.high
            s.measurement_ci_relative = interval.relative_half_width
    assert s.energy_j_per_request is not None  # energy_figures sets it: every counted call has rows
    interval = positive_interval([w.energy_j(domains) / c.rows for w, c in zip(windows, counted, strict=True)],
                                 s.energy_j_per_request)  # fmt: skip
    if interval is not None:
        low, high = names.interval_keys(names.ENERGY_PER_REQUEST)
        metrics = {low: interval.low, high: interval.high}
    return {k: v for k, v in (names.summary_metrics(s) | metrics).items() if math.isfinite(v)}


def _sources(meter: EnergyMeter | None) -> dict[str, str]:
    """Domain -> energy source of every domain, as a measurement run's tags have them."""
    if meter is None:
        return dict.fromkeys(DOMAINS, EnergySource.NONE)
    host = meter.host
    return {"gpu": meter.gpu_source, "cpu": host.cpu_source if host else EnergySource.NONE,
            "ram": host.ram_source if host else EnergySource.NONE}  # fmt: skip


def _hardware(meter: EnergyMeter | None) -> dict[str, str]:
    """The hardware tags a measurement run has, so an evaluation compares with a version's
    ``hardware`` tag (store.hardware_class)."""
    import platform

    host = meter.host if meter is not None else None
    cpu = host.hardware.get("cpu_model") if host is not None else platform.processor()
    gpus = [d.name for d in meter.gpus.devices] if meter is not None else []
    return names.hardware_tags(str(cpu) if cpu else None, gpus)


def _tags(sources: dict[str, str], calls: list[Call], notes: Notes) -> dict[str, str]:
    """Energy sources, what the headline counts, rejected readings and the trust verdict."""
    tags = {names.TAG_SOURCE_PREFIX + domain: source for domain, source in sources.items()}
    warnings = list(notes.warnings)
    counted = [c for c in calls if c.counts()]
    if counted and counted[0].measurement is not None:
        window = counted[0].measurement
        domains, kind = headline_domains(window)
        labels = [f"{d}:{window.sources()[d]}" for d in domains]
        tags[names.TAG_HEADLINE] = f"{'measured' if kind == 'measured' else 'ESTIMATE'} ({', '.join(labels)})"
        if kind == "estimate":
            warnings.insert(0, estimate_warning(labels))
        if len(counted) < MIN_SAMPLES:
            warnings.append(f"{len(counted)} valid window(s): an interval needs at least {MIN_SAMPLES}; evaluate "
                            "more rows or a smaller batch_size")
        uncounted = sum(c.rows for c in calls) - sum(c.rows for c in counted)
        if uncounted:
            warnings.append(f"energy covers {sum(c.rows for c in counted)} of {sum(c.rows for c in calls)} rows")
    elif calls:
        warnings.append("no valid measured window: there is no energy figure to quote")
    problems = [p for c in calls if c.measurement is not None for p in c.measurement.problems]
    if problems:
        tags[names.TAG_PROBLEMS] = "; ".join(problems)[:5000]
        warnings.append(f"{sum(1 for c in calls if c.measurement and c.measurement.problems)} window(s) "
                        f"rejected: {'; '.join(problems)[:300]}")  # fmt: skip
    tags[names.TAG_TRUST] = ("; ".join(warnings) if warnings else names.TRUST_OK)[:5000]
    return tags


def _record(config: EnergyEvaluatorConfig, sources: dict[str, str], calls: list[Call], notes: Notes,
            rows: int) -> dict[str, Any]:  # fmt: skip
    settings = {k: (v if isinstance(v, (str, int, float, bool, list, type(None))) else repr(v))
                for k, v in asdict(config).items()}  # fmt: skip
    return {
        "evaluator": EVALUATOR_NAME,
        "config": settings,
        "rows": rows,
        "energy_sources": sources,
        "notes": notes.warnings,
        "calls": [{"name": c.name, "rows": c.rows, "seconds": c.seconds, "tokens": c.tokens, "counts": c.counts(),
                   "measurement": asdict(c.measurement) if c.measurement else None} for c in calls],
    }  # fmt: skip


def _log(run_id: str, metrics: dict[str, float], tags: dict[str, str], record: dict[str, Any] | None, dataset: Any,
         model_id: str | None) -> Any | None:  # fmt: skip
    """Metrics (linked to the dataset and model as MLflow's own evaluators link them), tags and
    the windows as an artifact; returns the artifact's EvaluationArtifact."""
    from mlflow.models.evaluation.artifacts import JsonEvaluationArtifact

    from mlflow_energy.record.writer import log_evaluation

    name, digest = getattr(dataset, "name", None), getattr(dataset, "digest", None)
    if name is None or digest is None:
        name = digest = None
    uri = log_evaluation(run_id, metrics, tags, record, names.ARTIFACT_ENERGY_EVALUATION, name, digest, model_id)
    return None if uri is None else JsonEvaluationArtifact(uri=uri, content=record)
