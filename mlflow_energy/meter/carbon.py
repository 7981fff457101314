"""Grid carbon intensity from CodeCarbon's offline data: no network needed."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def known_countries() -> frozenset[str]:
    from codecarbon.input import DataSource

    return frozenset(DataSource().get_global_energy_mix_data())


def grid_intensity_g_per_kwh(country_iso_code: str, region: str | None = None) -> float:
    """Grams of CO2-equivalent per kWh for a country (ISO 3166-1 alpha-3) and optional region."""
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    geo = GeoMetadata(country_iso_code=country_iso_code, region=region)
    kg = Emissions(DataSource()).get_private_infra_emissions(Energy.from_energy(kWh=1.0), geo)
    return kg * 1000.0
