"""Pareto fronts: the points no other point beats on both axes."""

from __future__ import annotations


def pareto_front(costs: list[float], gains: list[float]) -> list[int]:
    """Indices of the points on the front when ``cost`` is minimised and ``gain`` maximised.

    A point is dominated when another is at least as good on both axes and strictly better on
    one; equal points are all kept.
    """
    front = []
    points = list(zip(costs, gains, strict=True))
    for i, (cost, gain) in enumerate(points):
        dominated = any(c <= cost and g >= gain and (c < cost or g > gain) for j, (c, g) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front
