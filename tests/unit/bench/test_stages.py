"""Where a run's time goes: each stage's wall time adds up, and the fixed cost is what is left
beyond the work."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mlflow_energy.bench import stages
from mlflow_energy.bench.stages import StageClock, add_stages, stages_line, with_totals


def test_the_clock_adds_each_stretch_to_the_stage_entered_before_it() -> None:
    times: dict[str, float] = {}
    clock = StageClock(times, stages.STARTUP, already_s=2.0)  # the process was 2 s old
    clock.enter(stages.CHECKS)
    time.sleep(0.05)
    clock.enter(stages.STARTUP)
    clock.enter(stages.LOGGING)
    assert times[stages.STARTUP] >= 2.0 and times[stages.CHECKS] >= 0.05
    assert stages.LOGGING not in times  # a stage counts once it is left


def test_a_process_knows_its_age_to_the_tick() -> None:
    # psutil's creation time rests on the boot time in whole seconds: it read 1.07 s for 0.36 s.
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3); from mlflow_energy.bench import stages; "
                          "print(stages.process_age_s())"], capture_output=True, text=True, check=True).stdout
    tick_s = 0.01  # the kernel counts a process's start in clock ticks
    assert 0.3 <= float(out) <= time.monotonic() - started + tick_s


def test_totals_and_the_console_line() -> None:
    times = {stages.STARTUP: 1.0, stages.LOAD: 2.0, stages.IDLE: 2.0, stages.WARMUP: 0.5, stages.WINDOWS: 5.0,
             stages.LOGGING: 0.5, stages.QUALITY: 0.01}  # fmt: skip
    totals = with_totals(times)
    assert totals[stages.WALL] == pytest.approx(11.01)
    assert totals[stages.FIXED] == pytest.approx(1.51)  # start-up, logging and quality: not the work
    assert stages_line(times) == ("Time: 11.0 s (fixed cost 1.5 s) = start-up 1.0 + load 2.0 + idle 2.0 + warm-up 0.5 "
                                  "+ windows 5.0 + logging 0.5")  # fmt: skip


def test_processes_add_up() -> None:
    total = {stages.LOAD: 1.0}
    add_stages(total, {stages.LOAD: 2.0, stages.WINDOWS: 3.0})
    assert total == {stages.LOAD: 3.0, stages.WINDOWS: 3.0}
