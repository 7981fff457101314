"""The jobs of every multirun (conf/config.yaml): Hydra's grid, each point measured
``sweep.replicates`` times. The sweeper that launches them is
``hydra_plugins/mlflow_energy_sweeper`` (Hydra loads plugins only from that namespace package).

Replicates run in rounds: round k measures every grid point once (override
``sweep.replicate=k``), each round in its own order, shuffled by a generator seeded with
``sweep.shuffle_seed`` (the same seed, the same order). Slow drift of a
shared machine (temperature, neighbours, clocks) then falls on every point alike instead of
on whichever points ran last. With one replicate the jobs are Hydra's basic grid, unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from mlflow_energy.adapters.hydra import override_key, split_grid
from mlflow_energy.config import PLAN_PREFIX, REPLICATE_KEY, ConfigError

SWEEPER_NAME = "replicated"  # its name in the hydra/sweeper config group
REPLICATES_KEY = "sweep.replicates"


@dataclass
class ReplicatedSweeperConf:
    """``hydra.sweeper.*``: the basic sweeper's keys (``params``: a grid set in a config file)."""

    _target_: str = "hydra_plugins.mlflow_energy_sweeper.ReplicatedSweeper"
    max_batch_size: int | None = None  # jobs handed to the launcher at once; null: all
    params: dict[str, str] | None = None


def register_sweeper() -> None:
    """Makes the sweeper known to Hydra: its config node, and its class, which Hydra's plugin scan
    misses in an editable install (it cannot list modules behind setuptools' import hook)."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins
    from hydra.utils import get_class

    ConfigStore.instance().store(group="hydra/sweeper", name=SWEEPER_NAME, node=ReplicatedSweeperConf)
    # By its target, as Hydra names every plugin: the plugin imports this package, never the reverse.
    Plugins.instance().register(get_class(ReplicatedSweeperConf._target_))


def sweeper_arguments(params: Mapping[str, Any] | None) -> list[str]:
    """A grid set in a config file (``hydra.sweeper.params``) as command-line overrides."""
    return [f"{k}={v}" for k, v in (params or {}).items()]


def cartesian_grid(arguments: list[str], config_loader: Any = None) -> list[list[str]]:
    """Every combination of the swept values, in the order Hydra's basic sweeper launches them."""
    return split_grid(OverridesParser.create(config_loader=config_loader).parse_overrides(arguments))


def replicated_jobs(grid: list[list[str]], replicates: int, shuffle_seed: int) -> list[list[str]]:
    """The grid, once per replicate: round k in its own shuffled order, each job with
    ``sweep.replicate=k``. One replicate: the grid as it is."""
    if replicates == 1:
        return grid
    shuffler = random.Random(shuffle_seed)
    jobs = []
    for k in range(replicates):
        round_ = [[*point, f"{REPLICATE_KEY}={k}"] for point in grid]
        shuffler.shuffle(round_)
        jobs += round_
    return jobs


def _refuse_plan_overrides(grid: list[list[str]], replicates: int) -> None:
    """``sweep.*`` keys plan the sweep: one value each, and ``sweep.replicate`` is the sweeper's."""
    values: dict[str, set[str]] = {}
    for override in (o for point in grid for o in point if override_key(o).startswith(PLAN_PREFIX)):
        values.setdefault(override_key(override), set()).add(override)
    for key, seen in values.items():
        if len(seen) > 1:
            raise ConfigError(f"{key} cannot be swept; give it one value ({REPLICATES_KEY}=3 repeats every point).")
    if replicates > 1 and REPLICATE_KEY in values:
        raise ConfigError(f"{REPLICATE_KEY} is set by the sweeper when {REPLICATES_KEY} > 1; drop it.")


def plan_jobs(arguments: list[str], replicates: int, shuffle_seed: int, config_loader: Any = None) -> list[list[str]]:
    """The overrides of every job of a sweep, in launch order. ConfigError for a bad plan."""
    if replicates < 1:
        raise ConfigError(f"{REPLICATES_KEY}={replicates} must be at least 1.")
    grid = cartesian_grid(arguments, config_loader)
    _refuse_plan_overrides(grid, replicates)
    return replicated_jobs(grid, replicates, shuffle_seed)


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The jobs a multirun of ``config`` launches: ``hydra.sweeper.params`` then the command line."""
    arguments = sweeper_arguments(config.hydra.sweeper.get("params")) + list(config.hydra.overrides.task)
    return plan_jobs(arguments, config.sweep.replicates, config.sweep.shuffle_seed)
