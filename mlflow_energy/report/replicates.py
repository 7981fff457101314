"""The runs of one configuration as one figure per metric, with a 95% interval that says what
it covers: the spread between replicates where there are several, else one run's windows.

A single run's interval (logged as ``<metric>_ci95_low/_high``) only sees the noise inside
that run; replicates measured at different times also see drift between runs, which is what
a comparison between configurations has to beat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mlflow_energy.bench.result import interval_label
from mlflow_energy.bench.stats import Interval, positive_interval
from mlflow_energy.store import names


def interval_source(runs: int, processes: int = 1) -> str:
    """``3 replicates``, or what one run's intervals cover (its windows, or its ``processes``)."""
    return f"{runs} replicates" if runs > 1 else interval_label(processes)


@dataclass
class Figures:
    """``metrics``: the mean over ``runs`` runs; ``intervals``: 95% intervals where they can be told."""

    metrics: dict[str, float]
    intervals: dict[str, Interval]
    runs: int
    processes: int = 1  # of a single run: its benchmark processes

    @property
    def covers(self) -> str:
        """What the intervals cover; empty when there is none."""
        return interval_source(self.runs, self.processes) if self.intervals else ""


def logged_interval(metrics: dict[str, float], metric: str) -> Interval | None:
    """The interval one run logged for ``metric`` (from its windows), if it logged one."""
    low, high = names.interval_keys(metric)
    if not {metric, low, high} <= metrics.keys():
        return None
    return Interval(metrics[metric], metrics[low], metrics[high], int(metrics.get(names.REPETITIONS, 0)))


def combine(runs: list[dict[str, float]], interval_metrics: Iterable[str] = names.RANKED_METRICS) -> Figures:
    """One run: its figures and the intervals it logged. Several: the mean of each metric and,
    for ``interval_metrics``, ``positive_interval`` of the run values around that mean (their
    own per-run intervals are left out: the spread between runs replaces them)."""
    if len(runs) == 1:
        intervals = {m: logged_interval(runs[0], m) for m in interval_metrics}
        processes = int(runs[0].get(names.PROCESSES, 1))
        return Figures(dict(runs[0]), {m: i for m, i in intervals.items() if i}, 1, processes)
    logged = set().union(*runs)
    per_run = {key for metric in logged for key in names.interval_keys(metric)}
    values = {key: [run[key] for run in runs if key in run] for key in logged - per_run}
    means = {key: sum(v) / len(v) for key, v in values.items()}
    intervals = {m: positive_interval(values[m], value=means[m]) for m in interval_metrics if m in values}
    return Figures(means, {m: i for m, i in intervals.items() if i}, len(runs))


def error_bars(figures: list[tuple[float | None, Interval | None]]) -> list[list[float]]:
    """Matplotlib's asymmetric error bars for (value, interval) pairs: each value's distance down
    to its interval's low end and up to its high end (0 where either is unknown)."""
    spans = [(value - interval.low, interval.high - value) if value is not None and interval is not None
             else (0.0, 0.0) for value, interval in figures]  # fmt: skip
    return [[max(0.0, below) for below, _ in spans], [max(0.0, above) for _, above in spans]]


def show(value: float, interval: Interval | None, separator: str = " ") -> str:
    """``0.1234 [0.1201-0.1262]``, or the value alone."""
    return f"{value:.4g}" + (f"{separator}[{interval.low:.4g}-{interval.high:.4g}]" if interval else "")
