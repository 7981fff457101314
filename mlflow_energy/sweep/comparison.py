"""What a sweep's comparison shows: the params that tell its measured points apart, and the
metrics beside the energy and speed figures; record/ui_view.py turns it into the UI's view."""

from __future__ import annotations

from mlflow_energy.record.ui_view import Comparison, point_colours
from mlflow_energy.store import names
from mlflow_energy.sweep.report import Axes, PointRow

MAX_PARAMS = 8  # swept params on the parallel-coordinates chart and in the columns


def comparison(rows: list[PointRow], axes: Axes, swept_keys: list[str]) -> Comparison:
    """The comparison of a sweep's points: the params that tell the points that measured apart,
    and every other metric they logged."""
    measured = [r for r in rows if r.measured and r.run_ids]
    quality = names.PERPLEXITY if any(names.PERPLEXITY in r.metrics for r in measured) else None
    shown = {axes.energy, axes.speed, quality}
    # Replicated points hold means without the runs' own interval metrics: those are named too.
    intervals = (k for m in names.RANKED_METRICS for k in names.interval_keys(m))
    logged = [*(k for r in measured for k in r.metrics), *intervals]
    others = [k for k in dict.fromkeys(logged) if k not in shown]
    run_ids = [run_id for r in measured for run_id in r.run_ids]
    params = swept_params(measured, swept_keys)
    everywhere = [p for p in params if all(p in r.params for r in measured)]
    colours = {run_id: colour for r, colour in zip(measured, point_colours(len(measured)), strict=True)
               for run_id in r.run_ids}  # fmt: skip
    return Comparison(axes.energy, axes.speed, quality, params, run_ids, others, everywhere, colours)


def swept_params(rows: list[PointRow], swept_keys: list[str]) -> list[str]:
    """The params whose value differs between ``rows``, the swept keys first (a group choice such
    as ``model`` by its ``model.name``), leaving out the ones an earlier param already determines
    (``model.weights`` follows ``model.name``) and the plan (``sweep.*``)."""
    differing = [k for k in dict.fromkeys(k for r in rows for k in r.params)
                 if len({r.params.get(k) for r in rows}) > 1 and not k.startswith("sweep.")]  # fmt: skip
    swept = [p for key in swept_keys for p in (key.lstrip("+~"), f"{key.lstrip('+~')}.name") if p in differing]
    kept: list[str] = []
    for key in dict.fromkeys([*swept, *differing]):
        if not any(_determines(rows, earlier, key) for earlier in kept):
            kept.append(key)
    return kept[:MAX_PARAMS]


def _determines(rows: list[PointRow], key: str, other: str) -> bool:
    """Every value of ``key`` goes with one value of ``other``."""
    pairs = {(r.params.get(key), r.params.get(other)) for r in rows}
    return len(pairs) == len({k for k, _ in pairs})
