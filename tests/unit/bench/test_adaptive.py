"""The adaptive protocol: generate windows until the J/token interval is tight or the time cap
is reached, the minimums always holding. Fake windows: no model, no clock, no sleeping."""

from __future__ import annotations

import itertools

from mlflow_energy.bench.protocol import repeat_until_tight
from mlflow_energy.bench.result import RepetitionWindow
from mlflow_energy.config import BenchConfig
from mlflow_energy.meter.measurement import Measurement

TOKENS_PER_CALL = 100


def fake_windows(joules: list[float], duration_s: float = 1.0):
    """measure(k, status) returning windows of 2 calls with the given energies in turn."""
    energies = itertools.cycle(joules)
    statuses: list[str] = []

    def measure(k: int, status: str) -> RepetitionWindow:
        statuses.append(status)
        m = Measurement(f"generate_{k}", float(k), duration_s, {"0": next(energies)}, "nvml_counter")
        return RepetitionWindow(m, [duration_s / 2] * 2)

    return measure, statuses


def run(joules: list[float], **bench) -> tuple[list[RepetitionWindow], list[str]]:
    defaults = {"min_repetitions": 3, "min_duration_s": 0.0, "target_ci": 0.02, "max_duration_s": 60.0}
    config = BenchConfig(**{**defaults, **bench})
    measure, statuses = fake_windows(joules)
    windows: list[RepetitionWindow] = []
    repeat_until_tight(measure, windows, TOKENS_PER_CALL, config)
    return windows, statuses


def test_a_quiet_point_stops_at_the_minimum() -> None:
    windows, _ = run([200.0, 200.2, 199.8])
    assert len(windows) == 3


def test_a_noisy_point_continues_until_the_target() -> None:
    windows, statuses = run([194.0, 206.0])  # 4% CV: needs about 20 windows for a 2% interval
    assert 10 < len(windows) < 40
    assert statuses[-1].startswith("interval ") and "target 2%" in statuses[-1]


def test_a_hopeless_point_stops_at_the_cap() -> None:
    windows, _ = run([100.0, 300.0], max_duration_s=12.0)
    assert len(windows) == 12  # 1 s windows up to 12 s; the interval never got within 2%


def test_minimums_still_apply_when_the_target_is_met() -> None:
    assert len(run([200.0], min_repetitions=5)[0]) == 5
    assert len(run([200.0], min_duration_s=7.5)[0]) == 8
    assert len(run([200.0], min_repetitions=4, max_duration_s=2.0)[0]) == 4  # the cap does not cut the minimum


def test_rejected_windows_do_not_count_towards_the_interval() -> None:
    measure, _ = fake_windows([200.0])
    windows: list[RepetitionWindow] = []

    def sometimes_rejected(k: int, status: str) -> RepetitionWindow:
        window = measure(k, status)
        if k % 2:
            window.measurement.problems.append("gpu0 energy counter did not move")
        return window

    repeat_until_tight(sometimes_rejected, windows, TOKENS_PER_CALL, BenchConfig(min_repetitions=2, min_duration_s=0.0))
    assert sum(w.measurement.valid for w in windows) >= 3 and len(windows) == 6
