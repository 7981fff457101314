"""What the phases of one run share, and the phases both scenarios run before their workload:
the cool-down and the idle baseline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlflow_energy.bench import stages
from mlflow_energy.bench.progress import REPEATS
from mlflow_energy.bench.result import BenchResult
from mlflow_energy.config import RunConfig
from mlflow_energy.meter.energy_meter import EnergyMeter

log = logging.getLogger("mlflow_energy.bench")


@dataclass
class Run:
    """One run's configuration, result so far, meter and output folder."""

    config: RunConfig
    result: BenchResult
    meter: EnergyMeter
    sync: Callable[[], None]
    save: Callable[[BenchResult], object]  # what it returns is ignored
    out_dir: Path
    clock: stages.StageClock

    def enter(self, phase: str, stage: str, repeats: bool = False) -> None:
        """Records the phase (a failure names it) and the stage its time counts to, and saves the
        partial result; ``repeats``: one window of a series, shown once per series outside a
        terminal."""
        self.clock.enter(stage)
        self.result.phase = phase
        self.save(self.result)
        log.info("%s", phase, extra={REPEATS: repeats})


def cool_down(run: Run) -> None:
    """A GPU run waits ``bench.cooldown_s``, then until its GPUs are below
    ``bench.cooldown_below_c`` (for at most ``bench.cooldown_max_s``): a hot GPU from the
    previous grid point draws more for the same work."""
    b, gpus = run.config.bench, run.meter.gpus
    if not gpus.devices or (b.cooldown_s <= 0 and b.cooldown_below_c is None):
        return
    run.enter(f"cool-down ({b.cooldown_s:g} s, then below {b.cooldown_below_c} C for at most {b.cooldown_max_s:g} s)",
              stages.COOLDOWN)
    started = time.monotonic()
    time.sleep(b.cooldown_s)
    deadline = time.monotonic() + b.cooldown_max_s
    while b.cooldown_below_c is not None and time.monotonic() < deadline:
        hottest = gpus.hottest_c()
        if hottest is None or hottest < b.cooldown_below_c:
            break
        time.sleep(1.0)
    run.result.cooldown_s = time.monotonic() - started
    log.info("cool-down took %.1f s; GPU at %s C", run.result.cooldown_s, gpus.hottest_c())


def measure_idle(run: Run) -> None:
    """The idle baseline (``bench.idle_s``) with the model loaded: the base of net figures."""
    if run.config.bench.idle_s > 0:
        run.enter(f"idle baseline ({run.config.bench.idle_s:g} s)", stages.IDLE)
        run.result.idle = run.meter.measure_idle(run.config.bench.idle_s)
