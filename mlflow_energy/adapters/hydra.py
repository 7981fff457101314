"""Hydra beyond its public API (tested with hydra-core 1.3): the cartesian expansion of sweep
overrides. Hydra exposes none; its basic sweeper's (``hydra._internal``) is the reference
behaviour, so every grid matches what ``-m`` would launch."""

from __future__ import annotations

from typing import Any


def override_key(override: str) -> str:
    """The key of one command-line override (``+model.seed=3`` -> ``model.seed``)."""
    return override.partition("=")[0].lstrip("+~")


def split_grid(overrides: list[Any]) -> list[list[str]]:
    """Parsed overrides -> every combination of the swept values, in Hydra's launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper.split_arguments(overrides, None)[0]
