"""NVML access for the GPUs a run can see: energy counters, power and state readings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuDevice:
    """One GPU visible to the run: its CUDA index inside the process and its NVML handle."""

    cuda_index: int
    uuid: str
    name: str
    handle: Any
    has_energy_counter: bool


@dataclass(frozen=True)
class GpuReading:
    """Instantaneous state of one GPU. Units in the names; None where NVML does not report it."""

    power_w: float | None
    sm_clock_mhz: float | None
    temperature_c: float | None
    utilization_pct: float | None
    memory_used_mb: float | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _normalise_uuid(uuid: str) -> str:
    # torch prints UUIDs bare; NVML and CUDA_VISIBLE_DEVICES use the GPU- / MIG- prefix.
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def cuda_uuids(indices: Sequence[int]) -> dict[int, str]:
    """CUDA index -> UUID of the named devices, as torch sees them: how NvmlGpus finds their NVML
    handles (NVML's order is not CUDA's)."""
    import torch

    return {i: str(torch.cuda.get_device_properties(i).uuid) for i in indices}


def resolve_visible_handles(
    nvml: Any, cuda_visible_devices: str | None, cuda_uuids: dict[int, str] | None = None
) -> list[tuple[int, Any]]:
    """(CUDA index, NVML handle) of the GPUs to measure, in CUDA index order.

    ``cuda_uuids`` (CUDA index -> UUID, from torch) is exact and wins; it may name a subset,
    the GPUs a run uses. Otherwise the CUDA_VISIBLE_DEVICES value is parsed as CUDA does:
    comma-separated indices or (prefixes of) UUIDs, stopping at the first entry that names no
    device; unset means every GPU. Indices assume CUDA_DEVICE_ORDER=PCI_BUS_ID, which is why
    UUIDs are preferred.
    """
    if cuda_uuids is not None:
        return [(i, nvml.nvmlDeviceGetHandleByUUID(_normalise_uuid(u))) for i, u in sorted(cuda_uuids.items())]
    count = nvml.nvmlDeviceGetCount()
    if cuda_visible_devices is None:
        return list(enumerate(nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)))
    all_handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    all_uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in all_handles]
    handles: list[Any] = []
    for entry in (e.strip() for e in cuda_visible_devices.split(",")):
        if entry.isdigit() and int(entry) < count:
            handles.append(all_handles[int(entry)])
        elif entry.startswith("MIG-"):
            handles.append(nvml.nvmlDeviceGetHandleByUUID(entry))
        elif entry.startswith("GPU-") and sum(u.startswith(entry) for u in all_uuids) == 1:
            handles.append(all_handles[next(i for i, u in enumerate(all_uuids) if u.startswith(entry))])
        else:
            break  # CUDA ignores this entry and every one after it
    return list(enumerate(handles))


def nvml_compute_capabilities(cuda_visible_devices: str | None, nvml: Any = None) -> list[tuple[int, int]] | None:
    """The compute capability of each GPU CUDA shows a process with this CUDA_VISIBLE_DEVICES, in
    CUDA index order, read through NVML in milliseconds (0.09 s on a fresh H100, where importing
    torch to ask it took 4.5 s); None where NVML cannot tell."""
    try:
        if nvml is None:
            import pynvml

            nvml = pynvml
        nvml.nvmlInit()
    except Exception:  # not installed, NVMLError_LibraryNotFound, DriverNotLoaded...
        return None
    try:
        capabilities = []
        for _, handle in resolve_visible_handles(nvml, cuda_visible_devices):
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            capabilities.append((int(major), int(minor)))
        return capabilities
    except nvml.NVMLError:
        return None
    finally:
        nvml.nvmlShutdown()


class NvmlGpus:
    """The visible GPUs through NVML. With no NVML (no driver, no GPU) it holds no device."""

    def __init__(
        self,
        nvml: Any | None = None,
        cuda_visible_devices: str | None = None,
        cuda_uuids: dict[int, str] | None = None,
        disabled_reason: str | None = None,
    ) -> None:
        """``disabled_reason`` set: measure no GPU (a CPU run), without touching NVML."""
        self.devices: list[GpuDevice] = []
        self.unavailable_reason: str | None = disabled_reason
        if disabled_reason:
            return
        if nvml is None:
            try:
                import pynvml
            except ImportError:
                self.unavailable_reason = "pynvml is not installed"
                return
            nvml = pynvml
        self._nvml: Any = nvml
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded...
            self.unavailable_reason = f"NVML did not initialise ({exc})"
            return
        for cuda_index, handle in resolve_visible_handles(nvml, cuda_visible_devices, cuda_uuids):
            self.devices.append(
                GpuDevice(
                    cuda_index=cuda_index,
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    handle=handle,
                    has_energy_counter=self._probe_counter(handle),
                )
            )
        if not self.devices:
            self.unavailable_reason = "no GPU is visible to this process"

    def _probe_counter(self, handle: Any) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            return True
        except self._nvml.NVMLError:
            return False

    def energy_mj(self) -> dict[int, int]:
        """Total-energy counter (millijoules since driver load) of each GPU that has one."""
        return {
            d.cuda_index: int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(d.handle))
            for d in self.devices
            if d.has_energy_counter
        }

    def _query(self, device: GpuDevice, fn_name: str, *args: Any) -> Any:
        """One NVML query; None where this GPU does not support it."""
        try:
            return getattr(self._nvml, fn_name)(device.handle, *args)
        except self._nvml.NVMLError:
            return None

    def temperature_c(self, device: GpuDevice) -> float | None:
        value = self._query(device, "nvmlDeviceGetTemperature", self._nvml.NVML_TEMPERATURE_GPU)
        return None if value is None else float(value)

    def hottest_c(self) -> float | None:
        """The highest temperature among the measured GPUs; None without a reading."""
        readings = [t for d in self.devices if (t := self.temperature_c(d)) is not None]
        return max(readings) if readings else None

    def read(self, device: GpuDevice, full: bool = True) -> GpuReading:
        """Power and SM clock; with ``full`` also temperature, utilisation and memory."""
        nvml, query = self._nvml, self._query
        power_mw = query(device, "nvmlDeviceGetPowerUsage")
        power_w = None if power_mw is None else power_mw / 1000.0
        clock = query(device, "nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_SM)
        if not full:
            return GpuReading(power_w, clock, temperature_c=None, utilization_pct=None, memory_used_mb=None)
        util = query(device, "nvmlDeviceGetUtilizationRates")
        memory = query(device, "nvmlDeviceGetMemoryInfo")
        return GpuReading(
            power_w=power_w,
            sm_clock_mhz=clock,
            temperature_c=self.temperature_c(device),
            utilization_pct=None if util is None else util.gpu,
            memory_used_mb=None if memory is None else memory.used / 2**20,
        )

    def describe(self) -> list[dict[str, Any]]:
        """Static facts per GPU for environment.json: model, limits, clocks."""
        nvml, query = self._nvml, self._query
        facts = []
        for d in self.devices:
            limit = query(d, "nvmlDeviceGetPowerManagementLimit")
            facts.append(
                {
                    "cuda_index": d.cuda_index,
                    "uuid": d.uuid,
                    "name": d.name,
                    "energy_counter": d.has_energy_counter,
                    "power_limit_w": None if limit is None else limit / 1000.0,
                    "max_sm_clock_mhz": query(d, "nvmlDeviceGetMaxClockInfo", nvml.NVML_CLOCK_SM),
                    "max_mem_clock_mhz": query(d, "nvmlDeviceGetMaxClockInfo", nvml.NVML_CLOCK_MEM),
                }
            )
        return facts

    def driver_version(self) -> str | None:
        if not self.devices:
            return None
        return _text(self._nvml.nvmlSystemGetDriverVersion())

    def close(self) -> None:
        if self.devices:
            self._nvml.nvmlShutdown()
