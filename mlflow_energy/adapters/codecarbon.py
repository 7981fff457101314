"""CodeCarbon beyond its public tracker API (tested with codecarbon 3.2.2 and 3.3):

- which mode its CPU model runs in (``tracker._hardware``, the CPU's ``_mode``): tells a RAPL
  reading from an estimate;
- its 1 s power monitor (``tracker._scheduler_monitor_power``), which the overhead benchmark clocks;
- its offline grid data (``codecarbon.input.DataSource``, ``codecarbon.core.emissions``): carbon
  intensity without a network call; the countries it covers are read from its data file directly
  (importing CodeCarbon costs the configuration checks 0.4 s);
- the CPU's name, which it asks of py-cpuinfo (``cpuinfo.get_cpu_info()["brand_raw"]``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("mlflow_energy.adapters")

RAPL_MODE = "intel_rapl"
# The /proc/cpuinfo fields py-cpuinfo (9.0) names the CPU by: the first line holding one of them.
_BRAND_FIELDS = ("model name", "cpu", "processor", "uarch")


def cpu_tracking_mode(tracker: Any) -> str | None:
    """How CodeCarbon measures the CPU (``intel_rapl``, ``cpu_load``, ``constant``...); None,
    with a warning, when this CodeCarbon keeps it elsewhere (the CPU then counts as an estimate)."""
    hardware = getattr(tracker, "_hardware", None)
    if hardware is None:
        log.warning("this CodeCarbon has no tracker._hardware; the CPU figure is treated as an estimate")
        return None
    return next((getattr(h, "_mode", None) for h in hardware if type(h).__name__ == "CPU"), None)


def power_monitor(tracker: Any) -> Any | None:
    """The scheduler of CodeCarbon's 1 s monitoring job (its ``function`` is what runs); None
    where this CodeCarbon has none."""
    return getattr(tracker, "_scheduler_monitor_power", None)


@functools.lru_cache(maxsize=None)
def known_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-3 codes CodeCarbon has grid data for."""
    spec = importlib.util.find_spec("codecarbon")  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        data = Path(folder) / "data" / "private_infra" / "global_energy_mix.json"
        if data.is_file():
            return frozenset(json.loads(data.read_text(encoding="utf-8")))
    from codecarbon.input import DataSource  # a CodeCarbon that keeps its data elsewhere

    return frozenset(DataSource().get_global_energy_mix_data())


def grid_intensity_g_per_kwh(country_iso_code: str, region: str | None = None) -> float:
    """Grams of CO2-equivalent per kWh for a country and optional region, from offline data."""
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    geo = GeoMetadata(country_iso_code=country_iso_code, region=region)
    kg = Emissions(DataSource()).get_private_infra_emissions(Energy.from_energy(kWh=1.0), geo)
    return kg * 1000.0


def cpu_brand(proc_cpuinfo: str) -> str | None:
    """The CPU's name in the text of Linux's /proc/cpuinfo, as py-cpuinfo reads it there: the
    first line whose field is one of its brand fields and whose value is not a number."""
    for line in proc_cpuinfo.splitlines():
        field, colon, value = line.partition(":")
        value = value.strip()
        if colon and field.strip().lower() in _BRAND_FIELDS and value and not value.isdigit():
            return value
    return None


@contextlib.contextmanager
def cpu_name_from_proc_cpuinfo() -> Iterator[None]:
    """CodeCarbon names the CPU (to look up its power) with ``cpuinfo.get_cpu_info()``, which
    starts a second Python that also times the CPU's clock: about 1.3 s of CPU in every
    benchmark process on a 2-core machine. On Linux py-cpuinfo takes the name from /proc/cpuinfo
    before any other source; inside this context the name is read from there directly.
    Elsewhere, or where the file names no CPU, py-cpuinfo answers as usual."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            brand = cpu_brand(file.read())
        import cpuinfo
    except (OSError, ImportError):
        brand = None
    if brand is None:
        yield
        return
    original = cpuinfo.get_cpu_info
    cpuinfo.get_cpu_info = lambda: {"brand_raw": brand}
    try:
        yield
    finally:
        cpuinfo.get_cpu_info = original
