"""The plain-data result of one measured window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class EnergySource:
    """Where a figure came from. Estimates are never presented as measurements."""

    NVML_COUNTER = "nvml_counter"  # nvmlDeviceGetTotalEnergyConsumption difference
    POWER_SAMPLING = "power_sampling"  # trapezoid integral of sampled nvmlDeviceGetPowerUsage
    RAPL = "rapl"  # CodeCarbon reading Intel/AMD RAPL counters
    ESTIMATE = "estimate"  # CodeCarbon model (TDP, CPU load or RAM size); not a measurement
    NONE = "none"  # domain absent (no GPU)


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

    @property
    def gpu_total_j(self) -> float:
        return sum(self.gpu_j.values())

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
