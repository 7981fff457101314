"""Sample statistics for repeated measurements: mean, std, CV, and 95% intervals for positive
quantities (log scale, so an interval of a positive quantity never reaches zero)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

# The fewest samples an interval is computed from: from 2 windows of a busy CPU, one interval
# spanned nine orders of magnitude.
MIN_SAMPLES = 3


@functools.lru_cache(maxsize=256)
def t975(degrees_of_freedom: int) -> float:
    """The two-sided 95% Student-t quantile (0.975), exact for any degrees of freedom."""
    if degrees_of_freedom < 1:
        raise ValueError("a confidence interval needs at least two samples")
    from scipy.stats import t  # imported when an interval is first computed: it costs a few hundred ms

    return float(t.ppf(0.975, degrees_of_freedom))


@dataclass(frozen=True)
class Stats:
    """Summary of n samples. std is the sample (n-1) standard deviation; with one sample the
    spread fields are None, and the interval with fewer than ``MIN_SAMPLES``. cv = std / mean."""

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
    cv = std / mean if mean else None
    if n < MIN_SAMPLES:
        return Stats(n, mean, std, None, None, cv)
    half = t975(n - 1) * std / math.sqrt(n)
    return Stats(n, mean, std, mean - half, mean + half, cv)


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
    interval. None with fewer than ``MIN_SAMPLES`` samples or a sample that is not positive."""
    factor = _log_factor(samples, means=1)
    if factor is None:
        return None
    center = math.exp(sum(math.log(x) for x in samples) / len(samples)) if value is None else value
    return Interval(center, center / factor, center * factor, len(samples))


def repeat_interval(samples: list[float], value: float) -> Interval | None:
    """Where a repeat of the same measurement is expected to land, 95% of the time: ``samples``
    are independent means (one per benchmark process), ``value`` their pooled figure; the next
    measurement of as many samples lands in ``[value / f, value * f]`` with
    ``f = exp(t975(n-1) * sd(log samples) * sqrt(2 / n))`` (the spread of the difference of two
    such means). None with fewer than ``MIN_SAMPLES`` samples or one that is not positive."""
    factor = _log_factor(samples, means=2)
    return None if factor is None else Interval(value, value / factor, value * factor, len(samples))


def _log_factor(samples: list[float], means: int) -> float | None:
    """``exp(t975(n-1) * sd(log samples) * sqrt(means / n))``, the factor of a log-scale interval
    around one mean of n samples (``means=1``) or the difference of two (``means=2``); None with
    fewer than ``MIN_SAMPLES`` samples or one that is not positive."""
    n = len(samples)
    if n < MIN_SAMPLES or any(x <= 0 for x in samples):
        return None
    spread = describe([math.log(x) for x in samples]).std or 0.0
    return math.exp(t975(n - 1) * spread * math.sqrt(means / n))
