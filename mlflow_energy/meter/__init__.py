"""How much energy did a window cost: NVML counters, power sampling, CodeCarbon. No ML code here."""

from mlflow_energy.meter.energy_meter import EnergyMeter
from mlflow_energy.meter.measurement import EnergySource, Measurement

__all__ = ["EnergyMeter", "EnergySource", "Measurement"]
