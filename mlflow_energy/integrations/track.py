"""``mlflow_energy.track()``: the CLI's meter around a user's own code, in the user's process,
logged to the active MLflow run with the CLI's metric names, tags and timeline.

    with mlflow.start_run():
        with mlflow_energy.track(tokens=lambda: counted) as t:
            with t.window("prefill"): ...
            with t.window("decode"): ...

The whole block is one window: GPU energy from the NVML counters of the GPUs the process sees
(or those named), CPU and RAM from CodeCarbon, a power timeline. Named windows inside it measure
the GPUs only (CodeCarbon's tasks cannot nest). Measuring never fails the user's code: a meter
that cannot start or read warns once and the block runs unmeasured, and an exception in the
block reaches the caller untouched after what was measured is logged.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import ContextDecorator, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from mlflow_energy.bench.result import Assessment, Summary
from mlflow_energy.bench.summary import emissions_figures, energy_figures, headline_domains, idle_power
from mlflow_energy.meter.energy_meter import EnergyMeter, WindowHandle, open_meter
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import TimelineSample
from mlflow_energy.store import names

log = logging.getLogger("mlflow_energy.track")

MAX_SHADED_WINDOWS = 200  # named windows shaded in the timeline plot, at most
Count = int | Callable[[], int] | None  # a number, or a callable read when the block ends


@dataclass
class Tracked:
    """What one ``track()`` block measured: the whole block, its named windows, and the counts."""

    total: Measurement
    windows: list[Measurement] = field(default_factory=list)
    idle: Measurement | None = None
    tokens: int | None = None
    requests: int | None = None
    carbon_intensity_g_per_kwh: float | None = None


def _count(value: Count, added: int) -> int | None:
    given = value() if callable(value) else value
    return None if given is None and not added else (given or 0) + added


def _synchronize() -> None:
    """torch.cuda.synchronize once the process uses CUDA (queued kernels land in their window);
    checked at every edge, since the block may start using the GPU after it began."""
    torch = sys.modules.get("torch")  # never imported for this: a process without torch has no CUDA work
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class Tracker(ContextDecorator):
    """See the module docstring; ``mlflow_energy.track(...)`` makes one."""

    def __init__(self, tokens: Count = None, requests: Count = None, *, gpus: list[int] | None = None,
                 idle_s: float = 0.0, sample_period_s: float | None = 0.1, country_iso_code: str = "USA",
                 region: str | None = None, pue: float = 1.0) -> None:  # fmt: skip
        self._tokens, self._requests = tokens, requests
        self._gpus, self._idle_s, self._period = gpus, idle_s, sample_period_s
        self._country, self._region, self._pue = country_iso_code, region, pue
        self._reset()

    def _reset(self) -> None:
        """A fresh block: a decorated function enters the same tracker at every call."""
        self._added_tokens = self._added_requests = 0
        self._meter: EnergyMeter | None = None
        self._stack = ExitStack()
        self._total: WindowHandle | None = None
        self._windows: list[Measurement] = []
        self._idle: Measurement | None = None
        self._warned = False
        self.result: Tracked | None = None  # set when the block ends

    def add_tokens(self, n: int) -> None:
        self._added_tokens += n

    def add_requests(self, n: int) -> None:
        self._added_requests += n

    def _warn(self, what: str, exc: BaseException) -> None:
        if not self._warned:  # once per block: a failing meter must not flood the user's log
            message = f"mlflow-energy: {what} ({type(exc).__name__}: {exc}); the code runs unmeasured from here"
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            self._warned = True

    def __enter__(self) -> Tracker:
        self._reset()
        try:
            self._meter = self._stack.enter_context(_meter(self._gpus, self._period, self._country, self._region))
            if self._idle_s > 0:
                self._idle = self._meter.measure_idle(self._idle_s)
            self._total = self._stack.enter_context(self._meter.window("total"))
        except Exception as exc:  # noqa: BLE001 - measuring must never stop the user's code
            self._warn("the energy meter could not start", exc)
            self._stack.close()
            self._meter = self._total = None
        return self

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[None]:
        """A named part of the block: its duration and GPU energy (``window/<name>/...``)."""
        if self._meter is None:
            yield
            return
        handle = None
        try:
            with self._meter.window(name, with_host=False) as handle:
                yield
        finally:
            if handle is not None and handle.measurement is not None:
                self._windows.append(handle.measurement)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:  # fmt: skip
        timeline: list[TimelineSample] = []
        if self._meter is not None:
            try:
                self._stack.close()  # ends the total window normally: what ran is measured, even on an exception
                timeline = self._meter.timeline()
                assert self._total is not None
                tokens = _count(self._tokens, self._added_tokens)
                requests = _count(self._requests, self._added_requests)
                intensity = _intensity(self._country, self._region)
                self.result = Tracked(self._total.measured(), self._windows, self._idle, tokens, requests, intensity)
            except Exception as failure:  # noqa: BLE001
                self._warn("the energy meter could not read the block", failure)
        if self.result is not None:
            try:
                log_tracked(self.result, timeline, failed=exc_type is not None, pue=self._pue)
            except Exception as failure:  # noqa: BLE001
                self._warn("the measurement could not be logged to MLflow", failure)
        return False  # the user's exception, if any, goes on untouched


@contextlib.contextmanager
def _meter(gpus: list[int] | None, period: float | None, country: str, region: str | None) -> Iterator[EnergyMeter]:
    with tempfile.TemporaryDirectory(prefix="mlflow-energy-track-") as folder:
        meter = open_meter(Path(folder), country, region, gpus, _synchronize, period)  # gpus None: every visible one
        try:
            yield meter
        finally:
            meter.close()


def _intensity(country: str, region: str | None) -> float | None:
    from mlflow_energy.adapters.codecarbon import grid_intensity_g_per_kwh

    try:
        return grid_intensity_g_per_kwh(country, region)
    except Exception:  # noqa: BLE001 - no emissions figure, the energy stands
        return None


def summarize_tracked(t: Tracked, pue: float = 1.0) -> Summary:
    """The CLI's Summary fields that a block has: the measured-first headline, per token and
    request where counts were given, speed, GPU power, idle and net, emissions."""
    m, d = t.total, t.total.duration_s
    domains, _ = headline_domains(m)
    f = {**energy_figures([m], domains, t.tokens, t.requests), **emissions_figures([m], t.tokens,
         t.carbon_intensity_g_per_kwh, pue)}  # fmt: skip
    f |= {"measurement_duration_s": d, "measurement_generated_tokens": t.tokens, "measurement_requests": t.requests,
          "emissions_intensity_g_per_kwh": t.carbon_intensity_g_per_kwh}  # fmt: skip
    if d > 0:
        f |= {"power_gpu_mean_w": f["energy_gpu_j"] / d if f["energy_gpu_j"] is not None else None,
              "throughput_tokens_per_s": t.tokens / d if t.tokens else None,
              "throughput_requests_per_s": t.requests / d if t.requests else None}  # fmt: skip
    idle_w, _ = idle_power(t.idle, domains)
    if idle_w is not None:
        f |= {"energy_idle_w": idle_w, "energy_net_j": f["energy_total_j"] - idle_w * d}
    return Summary(**f)


def tracked_metrics(t: Tracked, pue: float = 1.0) -> dict[str, float]:
    """The block's Summary metrics, and each window name's totals over its windows."""
    domains, _ = headline_domains(t.total)
    metrics = names.summary_metrics(summarize_tracked(t, pue))
    by_name: dict[str, list[Measurement]] = {}
    for w in t.windows:
        by_name.setdefault(w.name, []).append(w)
    for name, windows in by_name.items():
        complete = all(d in w.sources() for w in windows for d in domains)  # named windows have no CPU, RAM
        gpu = [w.gpu_total_j for w in windows if w.gpu_j]
        metrics |= names.window_metrics(
            name, len(windows), sum(w.duration_s for w in windows),
            sum(w.energy_j(domains) for w in windows) if complete else None,
            sum(gpu) if len(gpu) == len(windows) else None,
        )  # fmt: skip
    return metrics


def tracked_tags(t: Tracked) -> dict[str, str]:
    from mlflow_energy.report.headline import basis_label

    domains, basis = headline_domains(t.total)
    sources = t.total.sources()
    tags = {names.TAG_SOURCE_PREFIX + d: source for d, source in sources.items()}
    counted = Assessment(headline=basis, headline_sources=[f"{d}:{sources[d]}" for d in domains])
    tags[names.TAG_HEADLINE] = basis_label(counted)
    if t.total.problems or any(w.problems for w in t.windows):
        tags[names.TAG_PROBLEMS] = "; ".join(p for m in [t.total, *t.windows] for p in m.problems)[:5000]
    return tags


def log_tracked(t: Tracked, timeline: list[TimelineSample], failed: bool = False, pue: float = 1.0) -> str:
    """Logs to the active run, or to a new one it ends (FAILED when the block raised): the run id."""
    from mlflow_energy.record.writer import log_to_active_run

    # Shading thousands of windows (a window per request) would take the plot minutes: the block then.
    shaded = t.windows if 0 < len(t.windows) <= MAX_SHADED_WINDOWS else [t.total]
    phases = [(w.name, w) for w in shaded]
    return log_to_active_run(tracked_metrics(t, pue), tracked_tags(t), timeline, phases, failed)


def track(tokens: Count = None, requests: Count = None, **options: Any) -> Tracker:
    """Measure a block or a function (``@mlflow_energy.track(...)``) and log it to the active
    MLflow run. ``tokens`` / ``requests``: counts, or callables read when the block ends (or
    ``t.add_tokens(n)`` inside it). Options: ``gpus`` (CUDA indices; default every visible GPU),
    ``idle_s`` (an idle baseline first: net energy), ``sample_period_s``, ``country_iso_code``,
    ``region``, ``pue``."""
    return Tracker(tokens, requests, **options)
