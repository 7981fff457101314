"""EnergyMeter: named windows over NVML counters, sampled power and CodeCarbon."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.meter.gpu import NvmlGpus
from mlflow_energy.meter.host import HostEnergy
from mlflow_energy.meter.measurement import EnergySource, Measurement
from mlflow_energy.meter.sampler import PowerSampler, TimelineSample

log = logging.getLogger(__name__)


# A counter that has not moved in this long is read as it is (an edge left unaligned).
_COUNTER_WAIT_LIMIT_S = 0.5


@dataclass
class WindowHandle:
    """Filled in when the ``with meter.window(...)`` block ends."""

    measurement: Measurement | None = None
    start_s: float = 0.0  # meter clock
    end_s: float = 0.0

    def measured(self) -> Measurement:
        """The measurement, read after the ``with`` block: the meter sets it whenever the block
        ends without an exception (an exception propagates past every reader)."""
        assert self.measurement is not None, "a window's measurement is read before its with block ended"
        return self.measurement


@dataclass
class CounterEdge:
    """The GPU counters at one window edge. ``mj``: each counter's value; ``at_s``: when each
    value appeared (meter clock; the edge time itself where not aligned)."""

    mj: dict[int, int]
    at_s: dict[int, float]


def _no_sync() -> None:
    return None


class EnergyMeter:
    """Measures named windows.

    Args:
        synchronize: called right before every counter read and timestamp (the bench passes
            ``torch.cuda.synchronize`` on GPU) so that queued kernels land in their window.
        sample_period_s: power timeline period; None: no sampling thread, samples at window edges only.
        host: CodeCarbon wrapper for CPU and RAM; None measures the GPUs alone.
        gpus: the visible GPUs; a default ``NvmlGpus()`` when None.
        align_to_counter: wait at each window edge for every GPU counter's next update, so the
            counter difference covers a known span (the counter moves about every 100 ms; an
            unaligned 1 s window reads up to 10% of its energy early or late). The waits lie
            outside the window; the GPU's idle power over them is taken out of its energy.
    """

    def __init__(
        self,
        synchronize: Callable[[], None] = _no_sync,
        sample_period_s: float | None = 0.1,
        host: HostEnergy | None = None,
        gpus: NvmlGpus | None = None,
        align_to_counter: bool = False,
    ) -> None:
        self._sync = synchronize
        self._align = align_to_counter
        self._gpu_idle_w: dict[int, float] = {}  # per CUDA index, once measure_idle has run
        self.gpus = gpus if gpus is not None else NvmlGpus()
        self.host = host
        self._origin = time.perf_counter()
        self.sampler = PowerSampler(self.gpus, sample_period_s, self._origin)
        self.sampler.start()
        self.gpu_source = self._gpu_source()
        if not self.gpus.devices:
            log.info("No GPU measured (%s): CPU and RAM only.", self.gpus.unavailable_reason)

    def _gpu_source(self) -> str:
        if not self.gpus.devices:
            return EnergySource.NONE
        if all(d.has_energy_counter for d in self.gpus.devices):
            return EnergySource.NVML_COUNTER
        return EnergySource.POWER_SAMPLING

    def now_s(self) -> float:
        return time.perf_counter() - self._origin

    def _counter_edge(self) -> CounterEdge:
        """The counters now, or, when aligning, each at its next update."""
        first = self.gpus.energy_mj()
        now = self.now_s()
        edge = CounterEdge(first, {i: now for i in first})
        if not (self._align and first):
            return edge
        waiting = set(first)
        while waiting and self.now_s() - now < _COUNTER_WAIT_LIMIT_S:
            before = self.now_s()
            reading = self.gpus.energy_mj()
            seen_s = (before + self.now_s()) / 2  # the update happened around this read
            for i in [i for i in waiting if reading[i] != first[i]]:
                edge.mj[i], edge.at_s[i] = reading[i], seen_s
                waiting.discard(i)
        return edge

    def counter_period_s(self, updates: int = 4) -> float | None:
        """The first GPU counter's update period, median of ``updates`` intervals between
        changes (about 100 ms on an H100); None without a counter."""
        counted = [d for d in self.gpus.devices if d.has_energy_counter]
        if not counted:
            return None
        index = counted[0].cuda_index
        changes: list[float] = []
        last = self.gpus.energy_mj()[index]
        deadline = self.now_s() + (updates + 1) * _COUNTER_WAIT_LIMIT_S
        while len(changes) <= updates and self.now_s() < deadline:
            value = self.gpus.energy_mj()[index]
            if value != last:
                changes.append(self.now_s())
                last = value
        gaps = sorted(b - a for a, b in zip(changes, changes[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else None

    def _gpu_temperatures(self) -> dict[str, float]:
        return {str(d.cuda_index): t for d in self.gpus.devices if (t := self.gpus.temperature_c(d)) is not None}

    @contextmanager
    def window(self, name: str, with_host: bool = True) -> Iterator[WindowHandle]:
        """``with_host=False``: the GPUs only (CodeCarbon's tasks cannot nest, so a window inside
        another measures no CPU or RAM)."""
        handle = WindowHandle()
        temperatures = self._gpu_temperatures()
        host = self.host if with_host else None
        if host:
            host.start(name)
        self._sync()
        start = self._counter_edge()
        handle.start_s = self.now_s()
        self.sampler.sample_now()  # bound the power integral at the window edges
        try:
            yield handle
        except BaseException:
            if host:
                host.stop(name)  # leave no CodeCarbon task open behind a failure
            raise
        self._sync()
        handle.end_s = self.now_s()
        end = self._counter_edge()
        self.sampler.sample_now()
        cpu_j = ram_j = None
        if host:
            cpu_j, ram_j = host.stop(name)
        handle.measurement = self._measurement(name, handle, start, end, cpu_j, ram_j, host is not None)
        handle.measurement.gpu_temperature_c = temperatures
        for problem in handle.measurement.problems:
            log.warning("Window %s: %s", name, problem)

    def _edge_idle_j(self, index: int, delta_j: float, span_s: float, wait_s: float) -> float:
        """GPU energy of the waits outside the window: idle power (measured in the idle
        baseline) times the wait; before an idle baseline, the span's own mean power."""
        power_w = self._gpu_idle_w.get(index, delta_j / span_s if span_s > 0 else 0.0)
        return min(delta_j, power_w * wait_s)

    def _measurement(
        self,
        name: str,
        handle: WindowHandle,
        start: CounterEdge,
        end: CounterEdge,
        cpu_j: float | None,
        ram_j: float | None,
        with_host: bool = True,
    ) -> Measurement:
        host = self.host if with_host else None
        m = Measurement(
            name=name,
            start_s=handle.start_s,
            duration_s=handle.end_s - handle.start_s,
            gpu_source=self.gpu_source,
            cpu_j=cpu_j,
            ram_j=ram_j,
            cpu_source=host.cpu_source if host else EnergySource.NONE,
            ram_source=host.ram_source if host else EnergySource.NONE,
        )
        for device in self.gpus.devices:
            i = device.cuda_index
            if device.has_energy_counter:
                self._add_counter_energy(m, i, handle, start, end)
                continue
            integral = self.sampler.power_integral_j(f"gpu{i}", handle.start_s, handle.end_s)
            if integral is None:
                m.problems.append(f"gpu{i} has no energy counter and the window is too short to integrate power")
            else:
                m.gpu_j[str(i)] = integral
        return m

    def _add_counter_energy(
        self, m: Measurement, i: int, handle: WindowHandle, start: CounterEdge, end: CounterEdge
    ) -> None:
        """GPU ``i``'s counter difference, less its idle energy over the edge waits; a
        difference that is negative or zero is rejected and named in ``m.problems``."""
        delta_mj = end.mj[i] - start.mj[i]
        if delta_mj < 0:
            m.problems.append(f"gpu{i} energy counter went backwards by {-delta_mj} mJ; reading rejected")
            return
        if delta_mj == 0:
            m.problems.append(f"gpu{i} energy counter did not move over {m.duration_s:.3f} s; reading rejected")
            return
        wait_s = max(0.0, (handle.start_s - start.at_s[i]) + (end.at_s[i] - handle.end_s)) if self._align else 0.0
        idle_j = self._edge_idle_j(i, delta_mj / 1000.0, end.at_s[i] - start.at_s[i], wait_s)
        m.gpu_j[str(i)] = delta_mj / 1000.0 - idle_j
        m.edge_wait_s = max(m.edge_wait_s, wait_s)
        m.edge_idle_j += idle_j

    def measure_idle(self, seconds: float) -> Measurement:
        """Energy of ``seconds`` of doing nothing: the baseline for net figures, and the power
        taken out of later windows for their edge waits."""
        with self.window("idle") as w:
            time.sleep(seconds)
        idle = w.measured()
        if idle.duration_s > 0:
            self._gpu_idle_w = {int(i): j / idle.duration_s for i, j in idle.gpu_j.items()}
        return idle

    def timeline(self) -> list[TimelineSample]:
        return self.sampler.samples()

    def close(self) -> None:
        self.sampler.stop()
        if self.host:
            self.host.close()
        self.gpus.close()


def open_meter(
    codecarbon_dir: Path,
    country: str,
    region: str | None,
    gpus: Sequence[int] | str | None,
    synchronize: Callable[[], None] = _no_sync,
    sample_period_s: float | None = 0.1,
    align_to_counter: bool = False,
    on_failure: Callable[[str, Exception], None] | None = None,
) -> EnergyMeter:
    """The one way the tool builds a meter (the benchmark protocol, ``track()`` and the
    ``energy`` evaluator): the GPUs ``gpus`` names (CUDA indices; None: every visible one; a
    sentence: why none is measured) and the CPU and RAM through CodeCarbon (writing into
    ``codecarbon_dir``, with the grid of ``country``/``region``).

    ``on_failure``: where a part that does not start is reported (``"gpus"`` or ``"host"``, and
    the error), the meter then going on without it; without it the error propagates."""
    from mlflow_energy.meter import gpu, host  # as modules: tests put fakes in them

    def started(part: str, start: Callable[[], Any], instead: Any) -> Any:
        try:
            return start()
        except Exception as exc:
            if on_failure is None:
                raise
            on_failure(part, exc)
            return instead(exc)

    if isinstance(gpus, str):
        gpu_set = gpu.NvmlGpus(disabled_reason=gpus)
    else:
        indices = gpus
        gpu_set = started("gpus", lambda: gpu.NvmlGpus(cuda_uuids=None if indices is None else gpu.cuda_uuids(indices)),
                          lambda exc: gpu.NvmlGpus(disabled_reason=str(exc)))  # fmt: skip
    energy = started("host", lambda: host.HostEnergy(country, region, codecarbon_dir), lambda exc: None)
    return EnergyMeter(synchronize, sample_period_s, energy, gpu_set, align_to_counter)
