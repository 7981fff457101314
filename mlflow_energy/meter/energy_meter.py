"""EnergyMeter: named windows over NVML counters, sampled power and CodeCarbon."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlflow_energy.meter.gpu import NvmlGpus
from mlflow_energy.meter.host import HostEnergy
from mlflow_energy.meter.measurement import EnergySource, Measurement
from mlflow_energy.meter.sampler import PowerSampler, TimelineSample

log = logging.getLogger(__name__)


@dataclass
class WindowHandle:
    """Filled in when the ``with meter.window(...)`` block ends."""

    measurement: Measurement | None = None
    start_s: float = 0.0  # meter clock
    end_s: float = 0.0


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
    """

    def __init__(
        self,
        synchronize: Callable[[], None] = _no_sync,
        sample_period_s: float | None = 0.1,
        host: HostEnergy | None = None,
        gpus: NvmlGpus | None = None,
    ) -> None:
        self._sync = synchronize
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

    @contextmanager
    def window(self, name: str) -> Iterator[WindowHandle]:
        handle = WindowHandle()
        if self.host:
            self.host.start(name)
        self._sync()
        handle.start_s = self.now_s()
        start_mj = self.gpus.energy_mj()
        self.sampler.sample_now()  # bound the power integral at the window edges
        try:
            yield handle
        except BaseException:
            if self.host:
                self.host.stop(name)  # leave no CodeCarbon task open behind a failure
            raise
        self._sync()
        handle.end_s = self.now_s()
        end_mj = self.gpus.energy_mj()
        self.sampler.sample_now()
        cpu_j = ram_j = None
        if self.host:
            cpu_j, ram_j = self.host.stop(name)
        handle.measurement = self._measurement(name, handle, start_mj, end_mj, cpu_j, ram_j)
        for problem in handle.measurement.problems:
            log.warning("Window %s: %s", name, problem)

    def _measurement(
        self,
        name: str,
        handle: WindowHandle,
        start_mj: dict[int, int],
        end_mj: dict[int, int],
        cpu_j: float | None,
        ram_j: float | None,
    ) -> Measurement:
        duration = handle.end_s - handle.start_s
        gpu_j: dict[str, float] = {}
        problems: list[str] = []
        for device in self.gpus.devices:
            i = device.cuda_index
            if device.has_energy_counter:
                delta_mj = end_mj[i] - start_mj[i]
                if delta_mj < 0:
                    problems.append(f"gpu{i} energy counter went backwards by {-delta_mj} mJ; reading rejected")
                elif delta_mj == 0:
                    problems.append(f"gpu{i} energy counter did not move over {duration:.3f} s; reading rejected")
                else:
                    gpu_j[str(i)] = delta_mj / 1000.0
            else:
                integral = self.sampler.power_integral_j(f"gpu{i}", handle.start_s, handle.end_s)
                if integral is None:
                    problems.append(f"gpu{i} has no energy counter and the window is too short to integrate power")
                else:
                    gpu_j[str(i)] = integral
        return Measurement(
            name=name,
            start_s=handle.start_s,
            duration_s=duration,
            gpu_j=gpu_j,
            gpu_source=self.gpu_source,
            cpu_j=cpu_j,
            ram_j=ram_j,
            cpu_source=self.host.cpu_source if self.host else EnergySource.NONE,
            ram_source=self.host.ram_source if self.host else EnergySource.NONE,
            problems=problems,
        )

    def measure_idle(self, seconds: float) -> Measurement:
        """Energy of ``seconds`` of doing nothing: the baseline for net figures."""
        with self.window("idle") as w:
            time.sleep(seconds)
        assert w.measurement is not None
        return w.measurement

    def timeline(self) -> list[TimelineSample]:
        return self.sampler.samples()

    def close(self) -> None:
        self.sampler.stop()
        if self.host:
            self.host.close()
        self.gpus.close()
