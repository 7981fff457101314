"""Energy on MLflow traces: each LLM span that MLflow's autologging or ``@mlflow.trace`` creates in
this process gets the GPU energy it used, and each trace the totals of its LLM spans.

    mlflow_energy.autolog()            # every trace from now on
    with mlflow_energy.trace_energy():  # the traces of this block
        ...

A thread reads the GPUs' total-energy counters (NVML) every ``period_s``; a span's energy is the
counter's rise between its start and end, interpolated between counter updates. Rules (also in
docs/reference/metrics.md, "Energy on traces"):

- **Overlap.** LLM spans open at the same time share the GPU equally: each stretch of time is
  split at every start and end of an LLM span, and its energy goes in equal parts to the spans
  open in it. The shares of all spans add up to the energy measured while any was open.
- **Too short.** A span shorter than the counter's update period (about 0.1 s on an H100) gets
  no figure, only a note saying so: the counter cannot tell its energy from its neighbours'.
- **No counter.** Where no GPU energy counter is readable (no GPU, no NVML), spans get a note
  and the source ``none``, never a zero.
- **Safe.** MLflow runs span processors inside its own guard: nothing here can fail the user's
  call, and an error in it leaves the span without figures.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlflow_energy.adapters import mlflow_tracing
from mlflow_energy.meter.gpu import NvmlGpus
from mlflow_energy.meter.measurement import EnergySource
from mlflow_energy.store import names

LLM_SPAN_TYPES = ("LLM", "CHAT_MODEL")  # MLflow's span types of a model call
NS_PER_S = 1_000_000_000
DEFAULT_COUNTER_PERIOD_S = 0.1  # until the counter's own updates have been seen
KEEP_S = 3600.0  # how far back the counter's timeline is kept: the longest span it can measure
STALE_S = 0.25  # a span's end this long after the last read has no figure (a reading thread that stopped)
KEEP_ENDED_TRACES = 10_000  # ids of ended traces remembered (MLflow keeps them until exported)


class CounterTimeline:
    """The GPUs' summed energy counter over wall-clock time (ns since the epoch, as span times
    are), read every ``period_s`` by a daemon thread (never at a span's end: one NVML read took
    5 ms there on an H100). Keeps the points where the counter moved, for ``KEEP_S``."""

    def __init__(self, gpus: NvmlGpus, cuda_indices: list[int] | None = None, period_s: float = 0.01) -> None:
        self._gpus = gpus
        self._indices = None if cuda_indices is None else set(cuda_indices)
        self._period_s = period_s
        self._lock = threading.Lock()
        self._times: list[int] = []  # ns: when each counter value was first seen
        self._joules: list[float] = []
        self._last_read_ns = 0
        self._stop = threading.Event()
        self.read_now()
        self._thread = threading.Thread(target=self._run, name="mlflow-energy-span-counter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            with contextlib.suppress(Exception):  # a failed read leaves a gap, filled by the next
                self.read_now()

    def read_now(self) -> None:
        counters = self._gpus.energy_mj()
        joules = sum(mj for i, mj in counters.items() if self._indices is None or i in self._indices) / 1000
        now = time.time_ns()
        with self._lock:
            self._last_read_ns = now
            if not self._joules or joules != self._joules[-1]:
                self._times.append(now)
                self._joules.append(joules)
            if now - self._times[0] > 1.1 * KEEP_S * NS_PER_S:  # forgotten in batches: a cut copies the lists
                cut = bisect.bisect_left(self._times, now - int(KEEP_S * NS_PER_S))
                del self._times[:cut], self._joules[:cut]

    def resolution_s(self) -> float:
        """The counter's update period: the median time between its last 20 moves."""
        with self._lock:
            times = self._times[-21:]
        gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
        return gaps[len(gaps) // 2] / NS_PER_S if len(gaps) >= 4 else DEFAULT_COUNTER_PERIOD_S

    def joules_at(self, t_ns: int) -> float | None:
        """The cumulative energy at ``t_ns``, linear between the counter's moves and, after the
        last one, at the last stretch's power (for at most ``STALE_S`` after the last read: the
        span that just ended); None outside what was read."""
        with self._lock:
            if not self._times or t_ns < self._times[0] or t_ns - self._last_read_ns > STALE_S * NS_PER_S:
                return None
            i = bisect.bisect_right(self._times, t_ns)
            if i == len(self._times):  # after the last move
                if i < 2:
                    return self._joules[-1]
                power = (self._joules[-1] - self._joules[-2]) / (self._times[-1] - self._times[-2])
                return self._joules[-1] + power * (t_ns - self._times[-1])
            t0, t1 = self._times[i - 1], self._times[i]
            j0, j1 = self._joules[i - 1], self._joules[i]
            return j0 + (j1 - j0) * (t_ns - t0) / (t1 - t0)

    def energy_j(self, start_ns: int, end_ns: int) -> float | None:
        a, b = self.joules_at(start_ns), self.joules_at(end_ns)
        return None if a is None or b is None else max(0.0, b - a)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._gpus.close()


@dataclass
class _TraceTotals:
    energy_j: float = 0.0
    output_tokens: int = 0
    llm_spans: int = 0
    with_figure: int = 0


@dataclass
class SpanEnergy:
    """The span processor (``mlflow.tracing.configure(span_processors=[...])``): figures on each
    LLM span as it ends, and the trace's totals on its root span and as trace tags."""

    __name__: ClassVar[str] = "mlflow_energy_span_energy"  # MLflow names a processor that failed by it

    timeline: CounterTimeline | None
    no_counter_reason: str | None = None
    _ended: list[tuple[int, int]] = field(default_factory=list)  # (start, end) ns of ended LLM spans, recent
    _traces: dict[str, _TraceTotals] = field(default_factory=dict)
    _ended_traces: dict[str, None] = field(default_factory=dict)  # insertion-ordered: the oldest first
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, span: Any) -> None:
        end_ns = time.time_ns()  # the span's own end time is set just after the processors run
        try:
            self._process(span, end_ns)
        except Exception as exc:  # the user's call comes first: the span goes on without figures
            span.set_attribute(names.SPAN_ENERGY_NOTE, f"not measured: {type(exc).__name__}: {exc}")

    def _process(self, span: Any, end_ns: int) -> None:
        with self._lock:
            totals = self._traces.setdefault(span.trace_id, _TraceTotals())
            if span.span_type in LLM_SPAN_TYPES:
                self._on_llm_span(span, end_ns, totals)
            if span.parent_id is None:
                del self._traces[span.trace_id]
                self._ended_traces[span.trace_id] = None
                if len(self._ended_traces) > KEEP_ENDED_TRACES:
                    del self._ended_traces[next(iter(self._ended_traces))]
                _set_trace_totals(span, totals)

    def _on_llm_span(self, span: Any, end_ns: int, totals: _TraceTotals) -> None:
        start_ns = span.start_time_ns
        tokens = mlflow_tracing.output_tokens(span)
        totals.llm_spans += 1
        totals.output_tokens += tokens or 0
        if tokens is not None:
            span.set_attribute(names.SPAN_OUTPUT_TOKENS, tokens)
        if self.timeline is None:
            span.set_attribute(names.SPAN_ENERGY_SOURCE, EnergySource.NONE)
            span.set_attribute(names.SPAN_ENERGY_NOTE, f"no GPU energy counter is readable here: "
                                                       f"{self.no_counter_reason}")  # fmt: skip
            return
        span.set_attribute(names.SPAN_ENERGY_SOURCE, f"gpu:{EnergySource.NVML_COUNTER}")
        others = self._overlapping(start_ns, end_ns, span.span_id)
        share, most_open = shared_energy(self.timeline.energy_j, start_ns, end_ns, others)
        span.set_attribute(names.SPAN_CONCURRENT, most_open)
        resolution_s = self.timeline.resolution_s()
        if (end_ns - start_ns) / NS_PER_S < resolution_s:
            span.set_attribute(names.SPAN_ENERGY_NOTE, f"shorter than the GPU energy counter's update period "
                                                       f"({resolution_s:.3g} s): no figure")  # fmt: skip
            return
        if share is None:
            span.set_attribute(names.SPAN_ENERGY_NOTE, "the counter was not read over the whole span: no figure")
            return
        totals.energy_j += share
        totals.with_figure += 1
        span.set_attribute(names.SPAN_ENERGY_J, share)
        span.set_attribute(names.SPAN_ENERGY_KIND, "measured")
        if tokens:
            span.set_attribute(names.SPAN_J_PER_OUTPUT_TOKEN, share / tokens)

    def _overlapping(self, start_ns: int, end_ns: int, span_id: str) -> list[tuple[int, int | None]]:
        """The other LLM spans open at some time in [start, end]: (start, end), end None while
        open. This span joins the ended ones, which are kept while a span still open (or one
        starting later) may overlap them: until the earliest start of an open span."""
        still_open = [s for s in mlflow_tracing.open_span_starts(LLM_SPAN_TYPES, span_id, self._ended_traces)
                      if s < end_ns]  # fmt: skip
        ended: list[tuple[int, int | None]] = [(s, e) for s, e in self._ended if s < end_ns and e > start_ns]
        self._ended.append((start_ns, end_ns))
        horizon = min(still_open, default=end_ns)
        self._ended = [(s, e) for s, e in self._ended if e > horizon]
        return ended + [(s, None) for s in still_open]

    def close(self) -> None:
        if self.timeline is not None:
            self.timeline.close()


def shared_energy(energy_j: Any, start_ns: int, end_ns: int,
                  others: list[tuple[int, int | None]]) -> tuple[float | None, int]:  # fmt: skip
    """The span's share of the energy over [start, end] when ``others`` (start, end or None:
    still open) overlap it: each stretch between consecutive starts and ends goes in equal parts
    to the spans open in it. Also the most spans open at once, this one included."""
    inside = (t for s, e in others for t in (s, e) if t is not None and start_ns < t < end_ns)
    cuts = sorted({start_ns, end_ns, *inside})
    share, most_open = 0.0, 1
    for a, b in zip(cuts, cuts[1:], strict=False):
        open_here = 1 + sum(1 for s, e in others if s <= a and (e is None or e >= b))
        most_open = max(most_open, open_here)
        stretch = energy_j(a, b)
        if stretch is None:
            return None, most_open
        share += stretch / open_here
    return share, most_open


def _set_trace_totals(root: Any, totals: _TraceTotals) -> None:
    if not totals.llm_spans:
        return
    figures = {names.TRACE_LLM_SPANS: f"{totals.llm_spans} ({totals.with_figure} with an energy figure)"}
    if totals.with_figure == totals.llm_spans:  # a part of the trace unmeasured: no total at all
        figures[names.TRACE_ENERGY_J] = f"{totals.energy_j:.6g}"
        if totals.output_tokens:
            figures[names.TRACE_OUTPUT_TOKENS] = str(totals.output_tokens)
    for key, value in figures.items():
        root.set_attribute(key, value)
    mlflow_tracing.set_trace_tags(root.trace_id, figures)


_active: SpanEnergy | None = None
_active_lock = threading.Lock()


def _start(gpus: list[int] | None, period_s: float) -> SpanEnergy:
    nvml_gpus = NvmlGpus(cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    counters = [d for d in nvml_gpus.devices if d.has_energy_counter and (gpus is None or d.cuda_index in gpus)]
    if not counters:
        nvml_gpus.close()
        reason = nvml_gpus.unavailable_reason or "the GPUs asked for have no total-energy counter"
        return SpanEnergy(None, reason)
    return SpanEnergy(CounterTimeline(nvml_gpus, [d.cuda_index for d in counters], period_s))


def autolog(disable: bool = False, *, gpus: list[int] | None = None, period_s: float = 0.01) -> None:
    """Energy on every LLM span of this process's traces from now on (``disable=True``: no
    more). ``gpus``: the CUDA indices whose energy the calls use (a local server's GPUs; None:
    every GPU this process sees); ``period_s``: how often the counters are read."""
    global _active
    with _active_lock:
        if _active is not None:
            mlflow_tracing.remove_span_processor(_active)
            _active.close()
            _active = None
        if not disable:
            _active = _start(gpus, period_s)
            mlflow_tracing.add_span_processor(_active)


@contextlib.contextmanager
def trace_energy(*, gpus: list[int] | None = None, period_s: float = 0.01) -> Iterator[SpanEnergy]:
    """``autolog()`` for the traces of one block (a no-op inside ``autolog()``, which already
    measures them)."""
    with _active_lock:
        already = _active
    if already is not None:
        yield already
        return
    processor = _start(gpus, period_s)
    mlflow_tracing.add_span_processor(processor)
    try:
        yield processor
    finally:
        mlflow_tracing.remove_span_processor(processor)
        processor.close()
