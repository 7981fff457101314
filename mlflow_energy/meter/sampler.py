"""A light background thread recording the power timeline (GPU power, clock, temperature...)."""

from __future__ import annotations

import csv
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import psutil

from mlflow_energy.meter.gpu import NvmlGpus

HOST = "host"
FULL_READING_PERIOD_S = 1.0  # the slow-moving fields; power and SM clock are read every tick


@dataclass(frozen=True)
class TimelineSample:
    """One reading of one device. ``device`` is ``gpu<N>`` (CUDA index) or ``host``.

    For ``host`` rows, utilization_pct is system CPU utilisation and memory_used_mb the
    measured process's resident memory; power, clock and temperature are empty.
    """

    t_s: float  # seconds since the meter started (perf_counter clock)
    timestamp_ms: int  # wall clock, milliseconds since the epoch
    device: str
    power_w: float | None = None
    sm_clock_mhz: float | None = None
    temperature_c: float | None = None
    utilization_pct: float | None = None
    memory_used_mb: float | None = None

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)


def write_timeline_csv(samples: list[TimelineSample], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TimelineSample.columns())
        writer.writeheader()
        writer.writerows(s.to_dict() for s in samples)


def read_timeline_csv(path: Path) -> list[TimelineSample]:
    def number(value: str) -> float | None:
        return float(value) if value else None

    with path.open() as f:
        return [
            TimelineSample(
                t_s=float(row.pop("t_s")),
                timestamp_ms=int(row.pop("timestamp_ms")),
                device=row.pop("device"),
                **{k: number(v) for k, v in row.items()},
            )
            for row in csv.DictReader(f)
        ]


class PowerSampler:
    """Samples every ``period_s`` seconds until stopped; wakes only to read, never spins.

    Each tick reads GPU power and SM clock; temperature, utilisation, memory and the host row
    are read once per FULL_READING_PERIOD_S. Every read is a call that hands the interpreter
    lock to this thread and back, and a launch-bound generate loop feels each hand-over.
    ``busy_s`` is the time the thread spent sampling, its whole footprint on the process.
    ``period_s`` None: no background thread, only the samples taken by ``sample_now`` calls.
    """

    def __init__(self, gpus: NvmlGpus, period_s: float | None, origin: float) -> None:
        self._gpus = gpus
        self._period_s = period_s
        self._origin = origin
        # Wall-clock stamps follow the meter's clock from one anchor, so a clock step (NTP)
        # cannot put them out of order.
        self._wall_origin_ms = time.time() * 1000 - (time.perf_counter() - origin) * 1000
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._samples: list[TimelineSample] = []
        self._thread = threading.Thread(target=self._loop, name="mlflow-energy-sampler", daemon=True)
        self.busy_s = 0.0

    def start(self) -> None:
        self._process.cpu_percent(None)  # the first call only primes the counter
        psutil.cpu_percent(None)
        if self._period_s is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        assert self._period_s is not None
        full_every = max(1, round(FULL_READING_PERIOD_S / self._period_s))
        next_tick, ticks = time.perf_counter(), 0
        while not self._stop.is_set():
            tick_start = time.perf_counter()
            self.sample_now(full=ticks % full_every == 0)
            self.busy_s += time.perf_counter() - tick_start
            ticks += 1
            next_tick += self._period_s
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))

    def sample_now(self, full: bool = True) -> None:
        """One sample of every device; ``full`` False: GPU power and clock only.

        Window edges sample from the measured thread while the sampler thread ticks: one lock
        around the clock read and the append keeps the timeline in time order.
        """
        with self._lock:
            t_s = time.perf_counter() - self._origin
            stamp = round(self._wall_origin_ms + t_s * 1000)
            rows = [
                TimelineSample(t_s, stamp, f"gpu{d.cuda_index}", **asdict(self._gpus.read(d, full)))
                for d in self._gpus.devices
            ]
            if full:
                rows.append(
                    TimelineSample(
                        t_s,
                        stamp,
                        HOST,
                        utilization_pct=psutil.cpu_percent(None),
                        memory_used_mb=self._process.memory_info().rss / 2**20,
                    )
                )
            self._samples.extend(rows)

    def samples(self) -> list[TimelineSample]:
        with self._lock:
            return list(self._samples)

    def power_integral_j(self, device: str, start_s: float, end_s: float) -> float | None:
        """Trapezoid integral of sampled power over [start_s, end_s] (meter clock).

        Edges are held at the nearest sample inside the window. None with fewer than two
        samples in the window: too short to integrate.
        """
        points = [
            (s.t_s, s.power_w)
            for s in self.samples()
            if s.device == device and s.power_w is not None and start_s <= s.t_s <= end_s
        ]
        if len(points) < 2:
            return None
        energy = points[0][1] * (points[0][0] - start_s) + points[-1][1] * (end_s - points[-1][0])
        for (t0, p0), (t1, p1) in zip(points, points[1:], strict=False):
            energy += (p0 + p1) / 2 * (t1 - t0)
        return energy
