"""A fake of the pynvml calls mlflow-energy makes, for CI machines without a GPU."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


@dataclass
class FakeGpu:
    uuid: str
    name: str = "Fake H100"
    compute_capability: tuple[int, int] = (9, 0)
    energy_mj: list[int] | None = field(default_factory=lambda: [0])  # successive counter reads; None: no counter
    power_mw: int = 100_000
    counter: Callable[[], int] | None = None  # a counter read off a clock (ClockedCounter) instead
    _reads: int = 0

    def next_energy(self) -> int:
        if self.counter is not None:
            return self.counter()
        if self.energy_mj is None:
            raise NVMLError_NotSupported("not supported")
        value = self.energy_mj[min(self._reads, len(self.energy_mj) - 1)]
        self._reads += 1
        return value


class FakeNvml:
    """Handles are the FakeGpu objects themselves, in NVML (PCI) index order."""

    NVMLError = NVMLError
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.initialised = False

    def nvmlInit(self) -> None:
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return gpu
        raise NVMLError(f"no GPU with UUID {uuid}")

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetCudaComputeCapability(self, gpu: FakeGpu) -> tuple[int, int]:
        return gpu.compute_capability

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        return gpu.next_energy()

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        return gpu.power_mw

    def nvmlDeviceGetClockInfo(self, gpu: FakeGpu, clock: int) -> int:
        return 1980

    def nvmlDeviceGetMaxClockInfo(self, gpu: FakeGpu, clock: int) -> int:
        return 1980

    def nvmlDeviceGetTemperature(self, gpu: FakeGpu, sensor: int) -> int:
        return 40

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=97, memory=40)

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(used=2 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetPowerManagementLimit(self, gpu: FakeGpu) -> int:
        raise NVMLError_NotSupported("not supported")

    def nvmlSystemGetDriverVersion(self) -> str:
        return "999.99"


@dataclass
class ClockedCounter:
    """A total-energy counter like a real GPU's: the GPU draws ``power_w`` all the time, and the
    counter shows it only in steps, once every ``period_s``."""

    power_w: float
    period_s: float
    origin: float = field(default_factory=time.perf_counter)

    def __call__(self) -> int:
        steps = int((time.perf_counter() - self.origin) / self.period_s)
        return int(steps * self.period_s * self.power_w * 1000)
