"""Where a run's wall time goes, stage by stage: the command's own (start-up, checks, store,
logging) and each benchmark process's (its start, load, cool-down, idle baseline, warm-up,
prefill, windows, quality; a serving run's ramp-up and drain). Seconds of wall time, logged as
``time/<stage>_s`` metrics and shown in one console line.

The fixed cost is what a run spends beyond the work it exists for: wall time minus the model's
load, the warm-up, the idle baseline and the measured windows.
"""

from __future__ import annotations

import os
import time

import psutil

# The command's stages (the parent process).
STARTUP = "startup"  # the interpreter's start to the composed configuration: imports, Hydra
CHECKS = "checks"  # the configuration, its model and files
STORE = "store"  # the tracking store ready: created or migrated, experiment found
BETWEEN = "between_processes"  # the benchmark processes' time outside their own stages: spawning, merging
LOGGING = "logging"  # the result into MLflow: metrics, tags, artifacts
# A benchmark process's stages (summed over the processes of a run).
START = "process_start"  # the process's start to its first phase: interpreter, imports, the meter
LOAD = "load"
COOLDOWN = "cooldown"
IDLE = "idle"
WARMUP = "warmup"
PREFILL = "prefill"
RAMP_UP = "ramp_up"
WINDOWS = "windows"
DRAIN = "drain"
QUALITY = "quality"
END = "process_end"  # the last phase to the saved result: the timeline, the summary
# Derived: the whole, and the part that is not the work.
WALL = "wall"
FIXED = "fixed"

ORDER = (STARTUP, CHECKS, STORE, START, LOAD, COOLDOWN, IDLE, WARMUP, PREFILL, RAMP_UP, WINDOWS, DRAIN, QUALITY, END,
         BETWEEN, LOGGING)  # fmt: skip
WORK = (LOAD, WARMUP, IDLE, WINDOWS)  # what the fixed cost leaves out
_LABELS = {STARTUP: "start-up", START: "process start", END: "process end", RAMP_UP: "ramp-up", WARMUP: "warm-up",
           COOLDOWN: "cool-down", BETWEEN: "between processes"}  # fmt: skip


_restarted_at: float | None = None  # a standby child's request: its start-up, as far as a user waits


def restart_clock() -> None:
    global _restarted_at
    _restarted_at = time.time()


def process_age_s() -> float:
    """Seconds since this process was created (a fork: since the fork; a standby child: since
    its request came)."""
    if _restarted_at is not None:
        return max(0.0, time.time() - _restarted_at)
    return max(0.0, _age_from_kernel_s() or time.time() - psutil.Process().create_time())


def _age_from_kernel_s() -> float | None:
    """This process's age from Linux's own clock ticks, to 10 ms; None elsewhere. psutil's
    creation time rests on the boot time in whole seconds, and made the start-up up to 1 s long."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # after the command's name, which may hold spaces
        started_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, ticks after boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started_s
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class StageClock:
    """Adds the wall time from one ``enter`` to the next to the stage entered, into ``stages``."""

    def __init__(self, stages: dict[str, float], stage: str, already_s: float = 0.0) -> None:
        self.stages, self._stage, self._since = stages, stage, time.monotonic() - already_s

    def enter(self, stage: str) -> None:
        now = time.monotonic()
        add_stages(self.stages, {self._stage: now - self._since})
        self._stage, self._since = stage, now


def add_stages(total: dict[str, float], more: dict[str, float]) -> None:
    for stage, seconds in more.items():
        total[stage] = total.get(stage, 0.0) + seconds


def with_totals(stages: dict[str, float]) -> dict[str, float]:
    """The stages with the wall time (their sum) and the fixed cost."""
    wall = sum(stages.values())
    return {**stages, WALL: wall, FIXED: wall - sum(stages.get(s, 0.0) for s in WORK)}


def stages_line(stages: dict[str, float]) -> str:
    """``Time: 30.1 s (fixed cost 20.0 s) = start-up 5.0 + checks 0.3 + ...``: stages of a tenth
    of a second or more, in the order they happen."""
    totals = with_totals(stages)
    parts = [f"{_LABELS.get(s, s)} {stages[s]:.1f}" for s in ORDER if stages.get(s, 0.0) >= 0.05]
    return f"Time: {totals[WALL]:.1f} s (fixed cost {totals[FIXED]:.1f} s) = " + " + ".join(parts)
