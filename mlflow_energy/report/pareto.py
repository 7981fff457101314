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


Box = tuple[float, float, float, float]  # left, bottom, right, top (pixels)
# Where a label may sit, relative to its point (pixels): right-above first, then around it.
_OFFSETS: list[tuple[float, float]] = [(6, 4), (6, -16), (-6, 4), (-6, -16), (6, 16), (-6, 16), (6, -28), (-6, -28),
                                       (6, 28), (-6, 28)]  # fmt: skip


def place_labels(points: list[tuple[float, float]], sizes: list[tuple[float, float]],
                 bounds: Box | None = None) -> list[tuple[float, float]]:  # fmt: skip
    """Offsets (pixels, from each point to its label's corner nearest the point) chosen so that
    labels of ``sizes`` (width, height) overlap neither each other nor any point, nor leave
    ``bounds`` (the plot area), where one of the candidate places allows it; else the place with
    the least overlap. Greedy, in order."""
    placed: list[Box] = []
    dots = [(x - 4, y - 4, x + 4, y + 4) for x, y in points]
    offsets = []

    def clash(box: Box) -> float:
        outside = 0.0 if bounds is None else _area(box) - _overlap(box, bounds)
        return outside + sum(_overlap(box, other) for other in [*placed, *dots])

    for point, size in zip(points, sizes, strict=True):
        clashes = [clash(_label_box(point, size, o)) for o in _OFFSETS]
        best = _OFFSETS[clashes.index(min(clashes))]  # the first of the least overlapping places
        placed.append(_label_box(point, size, best))
        offsets.append(best)
    return offsets


def _label_box(point: tuple[float, float], size: tuple[float, float], offset: tuple[float, float]) -> Box:
    """A label's box: to the right of its point for a positive x offset, to the left otherwise."""
    (x, y), (width, height), (dx, dy) = point, size, offset
    left = x + dx if dx >= 0 else x + dx - width
    return left, y + dy, left + width, y + dy + height


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _overlap(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0
