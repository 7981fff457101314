"""Sample statistics for repeated measurements: mean, std, CV, and 95% intervals for positive
quantities (log scale, so an interval of a positive quantity never reaches zero)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Two-sided 95% Student-t quantiles (0.975) for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.960


def t975(degrees_of_freedom: int) -> float:
    if degrees_of_freedom < 1:
        raise ValueError("a confidence interval needs at least two samples")
    return _T975[degrees_of_freedom - 1] if degrees_of_freedom <= len(_T975) else _Z975


@dataclass(frozen=True)
class Stats:
    """Summary of n samples. std is the sample (n-1) standard deviation; with one sample the
    spread fields are None. cv = std / mean."""

    n: int
    mean: float
    std: float | None
    ci95_low: float | None
    ci95_high: float | None
    cv: float | None


def describe(values: list[float]) -> Stats:
    if not values:
        raise ValueError("no samples to describe")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Stats(1, mean, None, None, None, None)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * std / math.sqrt(n)
    return Stats(n, mean, std, mean - half, mean + half, std / mean if mean else None)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100] (numpy's default method)."""
    if not values:
        raise ValueError("no samples for a percentile")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Interval:
    """A 95% interval around ``value`` for a positive quantity, from ``n`` samples."""

    value: float
    low: float
    high: float
    n: int

    @property
    def relative_half_width(self) -> float:
        """Half the interval's width as a fraction of the value (0.02: within about 2%)."""
        return (self.high - self.low) / 2 / self.value

    def overlaps(self, other: Interval) -> bool:
        """Overlapping 95% intervals: the two values cannot be told apart (a conservative test)."""
        return self.low <= other.high and other.low <= self.high


def positive_interval(samples: list[float], value: float | None = None) -> Interval | None:
    """Student-t interval on the log scale: ``[value / f, value * f]`` with
    ``f = exp(t975(n-1) * sd(log samples) / sqrt(n))``. Fit for ratios of positive quantities
    (J/token, tokens/s): it is never below zero and is wider above than below, as their
    spread is. ``value`` defaults to the geometric mean of the samples; the bench passes the
    ratio of sums (total J / total tokens), which differs from it by O(CV^2), far inside the
    interval. None with fewer than two samples or a sample that is not positive."""
    if len(samples) < 2 or any(x <= 0 for x in samples):
        return None
    logs = [math.log(x) for x in samples]
    spread = describe(logs).std or 0.0
    center = math.exp(sum(logs) / len(logs)) if value is None else value
    factor = math.exp(t975(len(samples) - 1) * spread / math.sqrt(len(samples)))
    return Interval(center, center / factor, center * factor, len(samples))
