"""Sample statistics for repeated measurements: mean, std, Student-t 95% interval, CV."""

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
