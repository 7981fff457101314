"""How much energy did a window cost: NVML counters, power sampling, CodeCarbon. No ML code here."""
