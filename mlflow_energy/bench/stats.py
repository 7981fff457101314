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
    """The two-sided 95% Student-t quantile (0.975), exact for any degrees of freedom: the t at
    which the upper tail is 0.025, found by bisection to double precision. Computed here rather
    than by scipy, whose import cost a benchmark process and the command 0.8 s."""
    if degrees_of_freedom < 1:
        raise ValueError("a confidence interval needs at least two samples")
    low, high = 0.0, 16.0  # the quantile is 12.7 at 1 degree of freedom, less beyond
    while high - low > 1e-13 * high:
        middle = (low + high) / 2
        low, high = (middle, high) if _t_upper_tail(middle, degrees_of_freedom) > 0.025 else (low, middle)
    return (low + high) / 2


def _t_upper_tail(t: float, dof: int) -> float:
    """P(T > t) for t >= 0: half the regularized incomplete beta I_x(dof/2, 1/2) at x = dof/(dof+t^2)."""
    return 0.5 * _regularized_beta(dof / (dof + t * t), dof / 2, 0.5)


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction, on the side where it converges fast (Numerical
    Recipes, 3rd ed., section 6.4)."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(x, a, b) / a
    return 1.0 - front * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method."""
    tiny = 1e-300

    def nonzero(value: float) -> float:
        return value if abs(value) > tiny else tiny

    c, d = 1.0, 1.0 / nonzero(1.0 - (a + b) * x / (a + 1))
    fraction = d
    for m in range(1, 100_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # fmt: skip
            d = 1.0 / nonzero(1.0 + numerator * d)
            c = nonzero(1.0 + numerator / c)
            fraction *= d * c
        if abs(d * c - 1.0) < 1e-16:
            return fraction
    raise ArithmeticError(f"the incomplete beta's continued fraction did not converge at x={x}, a={a}, b={b}")


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
    import numpy as np

    if not values:
        raise ValueError("no samples for a percentile")
    return float(np.percentile(values, q))


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
