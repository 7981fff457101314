"""The plain-data result of one measured window."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

DOMAINS = ("gpu", "cpu", "ram")


class EnergySource:
    """Where a figure came from. Estimates are never presented as measurements."""

    NVML_COUNTER = "nvml_counter"  # nvmlDeviceGetTotalEnergyConsumption difference
    POWER_SAMPLING = "power_sampling"  # trapezoid integral of sampled nvmlDeviceGetPowerUsage
    RAPL = "rapl"  # CodeCarbon reading Intel/AMD RAPL counters
    ESTIMATE = "estimate"  # CodeCarbon model (TDP, CPU load or RAM size); not a measurement
    NONE = "none"  # domain absent (no GPU)

    @staticmethod
    def is_measured(source: str) -> bool:
        """A reading of the hardware (counter, sampled power, RAPL), not a model of it."""
        return source in (EnergySource.NVML_COUNTER, EnergySource.POWER_SAMPLING, EnergySource.RAPL)


@dataclass
class Measurement:
    """Energy of one named window.

    Attributes:
        name: window name (``load``, ``idle``, ``prefill``, ``generate_3``...).
        start_s: start of the window on the meter clock (seconds since the meter started),
            the same clock as the power timeline's ``t_s``.
        duration_s: wall time of the window, seconds, between synchronized boundaries.
        gpu_j: joules per visible GPU, keyed by CUDA index as a string (JSON keys are strings).
            A GPU whose reading was rejected is absent here and explained in ``problems``.
        gpu_source: an ``EnergySource`` value for the GPU figures.
        cpu_j: CPU package joules from CodeCarbon, or None when CodeCarbon is off.
        ram_j: RAM joules from CodeCarbon, or None when CodeCarbon is off.
        cpu_source: ``rapl`` or ``estimate:<codecarbon mode>``.
        ram_source: ``rapl`` or ``estimate``.
        problems: readings rejected in this window (counter went backwards, read zero...).
        edge_wait_s: time spent waiting for the GPU counters to update at both edges
            (``bench.align_to_counter``); outside ``duration_s``.
        edge_idle_j: GPU energy drawn during those waits, taken out of ``gpu_j`` (idle power
            from the idle baseline times each GPU's wait; see docs/reference/metrics.md).
        gpu_temperature_c: temperature of each GPU at the window's start, degrees Celsius.
    """

    name: str
    start_s: float
    duration_s: float
    gpu_j: dict[str, float] = field(default_factory=dict)
    gpu_source: str = EnergySource.NONE
    cpu_j: float | None = None
    ram_j: float | None = None
    cpu_source: str = EnergySource.NONE
    ram_source: str = EnergySource.NONE
    problems: list[str] = field(default_factory=list)
    edge_wait_s: float = 0.0
    edge_idle_j: float = 0.0
    gpu_temperature_c: dict[str, float] = field(default_factory=dict)

    @property
    def end_s(self) -> float:
        """End of the window on the meter clock."""
        return self.start_s + self.duration_s

    @property
    def gpu_total_j(self) -> float:
        return sum(self.gpu_j.values())

    def sources(self) -> dict[str, str]:
        """Domain -> energy source, for the domains this window has a figure for."""
        present = {"gpu": bool(self.gpu_j), "cpu": self.cpu_j is not None, "ram": self.ram_j is not None}
        every = {"gpu": self.gpu_source, "cpu": self.cpu_source, "ram": self.ram_source}
        return {d: every[d] for d in DOMAINS if present[d]}

    def energy_j(self, domains: Collection[str]) -> float:
        """Joules of the named domains (``gpu``, ``cpu``, ``ram``); absent ones count as zero."""
        parts = {"gpu": self.gpu_total_j, "cpu": self.cpu_j or 0.0, "ram": self.ram_j or 0.0}
        return sum(parts[d] for d in domains)

    @property
    def total_j(self) -> float:
        """GPU + CPU + RAM joules; absent domains count as zero."""
        return self.gpu_total_j + (self.cpu_j or 0.0) + (self.ram_j or 0.0)

    @property
    def valid(self) -> bool:
        return not self.problems

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**data)
