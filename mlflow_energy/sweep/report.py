"""The answer a sweep ends with: a console table, summary.csv, summary.html, pareto.png, and the
best point per metric, all on the parent run. Rebuilt from the store by ``mlflow-energy report``.

One row per grid point: its replicates (runs sharing a point hash) are averaged, with a 95%
interval across them (``report/replicates.py``). For each ranked metric the best point is
picked among the points that measured, and every other point whose interval overlaps the
best's is marked indistinguishable from it. A replicate the tracking server did not take
(``not_logged``) is shown, and ranked, from its result on disk.
"""

from __future__ import annotations

import csv
import html
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlflow_energy.bench.result import BenchResult, ResultFileError
from mlflow_energy.bench.stats import Interval
from mlflow_energy.record.run_record import run_params
from mlflow_energy.report.console import wide_console
from mlflow_energy.report.headline import trust_verdict
from mlflow_energy.report.pareto import pareto_front, place_labels
from mlflow_energy.report.replicates import combine, error_bars, show
from mlflow_energy.store import names
from mlflow_energy.store.uris import is_server, redact_uri, run_page
from mlflow_energy.sweep.state import (
    Outcome,
    PointOutcome,
    SweepState,
    count_outcomes,
)

log = logging.getLogger("mlflow_energy.sweep")

ENERGY, SPEED, QUALITY = names.ENERGY_PER_TOKEN, names.THROUGHPUT, names.PERPLEXITY


@dataclass(frozen=True)
class Axes:
    """The trade-off a sweep's Pareto front and first columns show: an energy figure (lower is
    better) against a speed figure."""

    energy: str
    energy_label: str
    energy_unit: str
    speed: str
    speed_label: str
    speed_unit: str
    speed_higher_is_better: bool

    @property
    def key_metrics(self) -> list[str]:
        """First in summary.csv, with their intervals."""
        return [self.energy, self.speed]

    def gain(self, row: PointRow) -> float:
        """The speed figure as a gain (higher is better), for the Pareto front."""
        value = row.metrics[self.speed]
        return value if self.speed_higher_is_better else -value


BATCH_AXES = Axes(ENERGY, "energy per token, J", "J/token", SPEED, "tokens/s (higher is better)", "tokens/s", True)
# Serving: what a deployment pays per request against what its users wait.
SERVING_AXES = Axes(names.ENERGY_PER_REQUEST, "energy per request, J", "J/request", names.REQUEST_P90,
                    "request latency p90, s (lower is better)", "s request latency p90", False)  # fmt: skip


def axes_for(rows: list[PointRow]) -> Axes:
    """Serving axes when a point of the sweep served requests, else the batch axes."""
    return SERVING_AXES if any(r.params.get(names.PARAM_SCENARIO) == "serving" for r in rows) else BATCH_AXES


COLUMNS = [
    names.ENERGY_PER_REQUEST,
    names.REQUEST_P90,
    names.NET_PER_TOKEN,
    names.GPU_NET_PER_TOKEN,
    names.TTFT_P50,
    names.TPOT_P50,
    names.REQUEST_P50,
    names.EMISSIONS_PER_1K_TOKENS,
    names.GPU_PEAK_MB,
    names.RAM_PEAK_MB,
    names.ENERGY_CV,
    QUALITY,
]
LABELS = {  # the ranked metrics as the console heads them
    ENERGY: "J/token",
    SPEED: "tokens/s",
    names.ENERGY_PER_REQUEST: "J/request",
    names.REQUEST_P90: "request p90 s",
    names.GPU_NET_PER_TOKEN: "GPU net J/token",
    names.EMISSIONS_PER_1K_TOKENS: "g CO2e/1k tok",
    names.TTFT_P50: "TTFT p50 s",
    names.REQUEST_P50: "request p50 s",
    QUALITY: "perplexity",
}
_COUNT_METRICS = {Outcome.FINISHED: names.METRIC_SWEEP_FINISHED, Outcome.FAILED: names.METRIC_SWEEP_FAILED,
                  Outcome.SKIPPED: names.METRIC_SWEEP_SKIPPED,
                  Outcome.NOT_LOGGED: names.METRIC_SWEEP_NOT_LOGGED}  # fmt: skip
# How a point compares with the best on one metric.
BEST, TIED, WORSE, UNTESTED = "best", "indistinguishable", "worse", "untested"


@dataclass
class PointRow:
    """One grid point as the report shows it (a skipped replicate shows the run that measured it).

    ``metrics`` are the mean of the replicates that measured (``replicates`` of them; every
    replicate when all failed), ``intervals`` their 95% intervals, ``covers`` what those cover.
    ``status``: finished | skipped (measured by an earlier launch) | not_logged (a replicate's
    result is only on disk) | failed (every replicate).
    ``verdicts``: per ranked metric, how the point compares with the best (BEST, TIED...).
    """

    name: str
    status: str
    run_ids: list[str]
    experiment_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)
    covers: str = ""
    replicates: int = 1
    failed_replicates: int = 0
    error: str | None = None
    trust: str = ""
    pareto: bool = False
    verdicts: dict[str, str] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.status != Outcome.FAILED


def point_rows(client: Any, outcomes: list[PointOutcome]) -> list[PointRow]:
    """Outcomes grouped by point hash (by job where there is none), in the order points first ran."""
    groups: dict[str, list[PointOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.point_hash or f"job {outcome.num}", []).append(outcome)
    return [_row(client, sorted(group, key=lambda o: o.replicate)) for group in groups.values()]


@dataclass(frozen=True)
class _Replicate:
    """What the report reads of one replicate: its run, or its result on disk when not logged."""

    run_id: str | None
    experiment_id: str | None
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


def _replicate(client: Any, outcome: PointOutcome) -> _Replicate | None:
    if outcome.run_id:
        run = client.get_run(outcome.run_id)
        return _Replicate(run.info.run_id, run.info.experiment_id, run.data.metrics, run.data.params, run.data.tags)
    if outcome.status == Outcome.NOT_LOGGED and outcome.result_dir:
        return _on_disk(Path(outcome.result_dir))
    return None


def _on_disk(folder: Path) -> _Replicate | None:
    """A result kept on disk, as its run would show it; None once the folder no longer holds it."""
    try:
        result = BenchResult.read(folder)
    except ResultFileError:
        return None
    metrics = names.summary_metrics(result.summary) if result.summary else {}
    return _Replicate(None, None, metrics, run_params(result), {names.TAG_TRUST: trust_verdict(result.assessment)})


def _row_status(group: list[PointOutcome]) -> str:
    """failed when no replicate measured; else not_logged while one waits on disk, finished when
    this launch measured one, skipped when earlier launches measured them all."""
    statuses = {o.status for o in group}
    return next((s for s in (Outcome.NOT_LOGGED, Outcome.FINISHED, Outcome.SKIPPED) if s in statuses), Outcome.FAILED)


def _row(client: Any, group: list[PointOutcome]) -> PointRow:
    replicates = [(o, _replicate(client, o)) for o in group]
    measured = [r for o, r in replicates if r is not None and o.status != Outcome.FAILED]
    failed = [(o, r) for o, r in replicates if o.status == Outcome.FAILED]
    shown = measured or [r for _, r in replicates if r is not None]
    figures = combine([r.metrics for r in shown])
    errors = [(r.tags.get(names.TAG_ERROR) if r else None) or o.error for o, r in failed]
    run_ids = [r.run_id for _, r in replicates if r is not None and r.run_id]
    experiment_id = next((r.experiment_id for _, r in replicates if r is not None and r.experiment_id), None)
    return PointRow(
        group[0].name, _row_status(group), run_ids, experiment_id, shown[0].params if shown else {},
        figures.metrics, figures.intervals, figures.covers, figures.runs, len(failed),
        next((e for e in errors if e), None), _trust(shown),
    )  # fmt: skip


def _trust(replicates: list[_Replicate]) -> str:
    """The replicates' trust warnings, each once; ``ok`` when every one says so; empty when none says."""
    verdicts = [r.tags.get(names.TAG_TRUST) for r in replicates]
    warnings = dict.fromkeys(v for v in verdicts if v and v != names.TRUST_OK)
    return " ".join(warnings) or (names.TRUST_OK if any(verdicts) else "")


def mark_pareto(rows: list[PointRow], axes: Axes = BATCH_AXES) -> None:
    """The front among the points that measured (a failed point's partial figures stay off it)."""
    measured = [r for r in rows if axes.energy in r.metrics and axes.speed in r.metrics and r.measured]
    for i in pareto_front([r.metrics[axes.energy] for r in measured], [axes.gain(r) for r in measured]):
        measured[i].pareto = True


def best_per_metric(rows: list[PointRow]) -> dict[str, PointRow]:
    """The best point per ranked metric, among the points that measured."""
    best = {}
    for metric, direction in names.RANKED_METRICS.items():
        candidates = [r for r in rows if metric in r.metrics and r.measured]
        if candidates:
            pick = min if direction == "min" else max
            best[metric] = pick(candidates, key=lambda r: r.metrics[metric])
    return best


def mark_verdicts(rows: list[PointRow], best: dict[str, PointRow]) -> None:
    """Indistinguishable from the best: the two 95% intervals overlap (a conservative test: a
    point marked worse is worse beyond both intervals). Untested: one of them has no interval."""
    for metric, top in best.items():
        reference = top.intervals.get(metric)
        for row in (r for r in rows if metric in r.metrics and r.measured):
            interval = row.intervals.get(metric)
            if row is top:
                row.verdicts[metric] = BEST
            elif reference is None or interval is None:
                row.verdicts[metric] = UNTESTED
            else:
                row.verdicts[metric] = TIED if interval.overlaps(reference) else WORSE


def named(rows: list[PointRow], metric: str, verdict: str) -> list[str]:
    """The names of the points whose ``verdict`` on ``metric`` is ``verdict`` (TIED: their
    interval overlaps the best's)."""
    return [r.name for r in rows if r.verdicts.get(metric) == verdict]


def best_tag(metric: str, top: PointRow, rows: list[PointRow]) -> str:
    """``NAME: 0.123 [0.120-0.126]``, or ``3 points cannot be told apart; best value NAME: ...``:
    short enough to read among the parent's tags; the points are in the parent's description."""
    others = named(rows, metric, TIED)
    claim = f"{len(others) + 1} points cannot be told apart; best value " if others else ""
    return f"{claim}{top.name}: {show(top.metrics[metric], top.intervals.get(metric))}"[:5000]


def energy_answer(rows: list[PointRow], best: dict[str, PointRow], axes: Axes) -> str | None:
    """The sweep's answer in one plain line, which never names a winner the data cannot:
    ``most energy-efficient: NAME, 0.1 [0.09-0.11] J/token`` or ``3 points cannot be told apart
    on J/token; lowest value: NAME, ...``; None when no point measured energy."""
    top = best.get(axes.energy)
    if top is None:
        return None
    value = f"{top.name}, {show(top.metrics[axes.energy], top.intervals.get(axes.energy))} {axes.energy_unit}"
    others = named(rows, axes.energy, TIED)
    if others:
        return f"{len(others) + 1} points cannot be told apart on {axes.energy_unit}; lowest value: {value}"
    if axes.energy not in top.intervals:
        return f"lowest {axes.energy_unit}: {value} (no interval, so not tested against the others)"
    return f"most energy-efficient: {value}"


def _swept(rows: list[PointRow], keys: list[str]) -> list[str]:
    return [k for k in keys if any(k in r.params for r in rows)]


Column = tuple[str, Callable[[PointRow], Any]]


def _metric_columns(metric: str) -> list[Column]:
    """The metric's value, and its interval where ranked metrics have one."""
    columns: list[Column] = [(metric, lambda r: r.metrics.get(metric, ""))]
    if metric in names.RANKED_METRICS:
        low, high = names.interval_keys(metric)
        columns += [(low, lambda r: r.intervals[metric].low if metric in r.intervals else ""),
                    (high, lambda r: r.intervals[metric].high if metric in r.intervals else "")]  # fmt: skip
    return columns


def report_columns(keys: list[str], axes: Axes) -> list[Column]:
    """summary.csv and summary.html: the point, the key metrics with their intervals, how many
    replicates and what the intervals cover, the other metrics, the verdicts, then bookkeeping."""
    others = [m for m in [*BATCH_AXES.key_metrics, *COLUMNS] if m not in axes.key_metrics]
    return [
        ("point", lambda r: r.name),
        *(c for m in axes.key_metrics for c in _metric_columns(m)),
        ("replicates", lambda r: r.replicates),
        ("interval", lambda r: r.covers),
        *(c for m in others for c in _metric_columns(m)),
        ("pareto", lambda r: r.pareto),
        *((f"vs_best:{m}", lambda r, m=m: r.verdicts.get(m, "")) for m in names.RANKED_METRICS),
        *((k, lambda r, k=k: r.params.get(k, "")) for k in keys),
        ("status", lambda r: r.status),
        ("failed_replicates", lambda r: r.failed_replicates),
        ("trust", lambda r: r.trust),
        ("run_ids", lambda r: " ".join(r.run_ids)),
        ("error", lambda r: r.error or ""),
    ]


def write_csv(rows: list[PointRow], keys: list[str], path: Path, axes: Axes = BATCH_AXES) -> None:
    columns = report_columns(keys, axes)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([header for header, _ in columns])
        for r in rows:
            writer.writerow([value(r) for _, value in columns])


_SORT_JS = """
document.querySelectorAll('th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
  const asc = th.dataset.asc !== 'true'; th.dataset.asc = asc;
  const key = r => { const t = r.cells[col].dataset.v ?? r.cells[col].innerText, n = parseFloat(t);
                     return isNaN(n) ? t : n; };
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1));
  rows.forEach(r => body.appendChild(r));
}));
"""


def write_html(rows: list[PointRow], keys: list[str], path: Path, tracking_uri: str, title: str,
               axes: Axes = BATCH_AXES) -> None:  # fmt: skip
    def anchor(r: PointRow, run_id: str, text: str) -> str:
        """A link for a file opened from a tracking server's address; a local store's report has
        no address to link (the parent run's description links every point inside the UI)."""
        if not is_server(tracking_uri):
            return html.escape(text)
        # run_ids holds logged runs only, and a logged run gives its row the experiment id.
        assert r.experiment_id is not None, f"{r.name} has a run but no experiment"
        return f'<a href="{html.escape(run_page(tracking_uri, r.experiment_id, run_id))}">{html.escape(text)}</a>'

    def link(r: PointRow) -> str:
        """The name links to the run; with replicates, each replicate has its own link."""
        if len(r.run_ids) == 1:
            return anchor(r, r.run_ids[0], r.name)
        return " ".join([html.escape(r.name), *(anchor(r, run_id, f"#{i + 1}") for i, run_id in enumerate(r.run_ids))])

    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return f"<td>{'yes' if value else ''}</td>"
        if isinstance(value, float):
            return f'<td data-v="{value!r}">{value:.4g}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    columns = report_columns(keys, axes)
    head = "".join(f"<th>{html.escape(header)}</th>" for header, _ in columns)
    body = "\n".join(
        f"<tr><td>{link(r)}</td>" + "".join(cell(value(r)) for _, value in columns[1:]) + "</tr>" for r in rows
    )
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px}}
th{{cursor:pointer;background:#eee}} td[data-v]{{text-align:right}}</style></head><body>
<h2>{html.escape(title)}</h2><p>Inside the MLflow UI, this page cannot open other pages: the parent run's
description holds the same answer with links to every point's run. Click a column header to sort. Energy
per token is gross and counts measured energy only (GPU counters, RAPL), or CodeCarbon's estimate where a run
measured nothing (its trust column says so); Pareto: no other point is better on both {html.escape(axes.energy)} and
{html.escape(axes.speed)}. A point with several replicates shows their mean and a 95% interval across
them; a single run shows the interval of its own windows. vs_best: indistinguishable when the point's 95%
interval overlaps the best point's.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table><script>{_SORT_JS}</script></body></html>
""")


def plot_pareto(rows: list[PointRow], path: Path, title: str, axes: Axes = BATCH_AXES) -> bool:
    """The energy axis against the speed axis (and J/token against perplexity where measured),
    with 95% interval bars; False with no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if axes.energy in r.metrics and axes.speed in r.metrics]
    if not measured:
        return False
    with_quality = [r for r in rows if ENERGY in r.metrics and QUALITY in r.metrics]
    panels = 2 if with_quality else 1
    fig, grid = plt.subplots(1, panels, figsize=(9 * panels, 6.5), dpi=120, squeeze=False)
    _scatter(grid[0][0], measured, (axes.speed, axes.speed_label), (axes.energy, axes.energy_label),
             [r.pareto for r in measured])  # fmt: skip
    if with_quality:
        front = set(pareto_front([r.metrics[ENERGY] for r in with_quality],
                                 [-r.metrics[QUALITY] for r in with_quality]))  # fmt: skip
        _scatter(grid[0][1], with_quality, (QUALITY, "perplexity (lower is better)"),
                 (ENERGY, BATCH_AXES.energy_label), [i in front for i in range(len(with_quality))])  # fmt: skip
    keys = [part.partition("=")[0] for part in rows[0].name.split(",") if "=" in part]
    labelled = f"points labelled by {', '.join(keys)}; " if keys else ""
    fig.suptitle(f"{title}\n{labelled}bars: 95% intervals where known")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _short(name: str) -> str:
    """``model.dtype=float32,workload.batch_size=4`` -> ``float32, 4`` (keys are in the title)."""
    return ", ".join(part.rpartition("=")[2] for part in name.split(","))


def _bars(rows: list[PointRow], metric: str) -> list[list[float]]:
    return error_bars([(r.metrics[metric], r.intervals.get(metric)) for r in rows])


def _scatter(ax: Any, rows: list[PointRow], x_axis: tuple[str, str], y_axis: tuple[str, str],
             on_front: list[bool]) -> None:  # fmt: skip
    """``x_axis`` and ``y_axis``: (metric, label)."""
    (x_metric, x_label), (y_metric, y_label) = x_axis, y_axis
    xs, ys = [r.metrics[x_metric] for r in rows], [r.metrics[y_metric] for r in rows]
    ax.errorbar(xs, ys, xerr=_bars(rows, x_metric), yerr=_bars(rows, y_metric), fmt="none",
                ecolor="tab:gray", elinewidth=0.8, capsize=2, zorder=2)  # fmt: skip
    ax.scatter(xs, ys, c=["tab:red" if f else "tab:gray" for f in on_front], zorder=3)
    front = sorted((x, y) for x, y, f in zip(xs, ys, on_front, strict=True) if f)
    ax.plot([x for x, _ in front], [y for _, y in front], color="tab:red", linewidth=1, label="Pareto front")
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"{y_label} (lower is better)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _label_points(ax, xs, ys, [_short(r.name) for r in rows])


def _label_points(ax: Any, xs: list[float], ys: list[float], labels: list[str]) -> None:
    """Each point's label where it overlaps no other label or point (report/pareto.py)."""
    fontsize = 8
    ax.figure.canvas.draw()  # the axes' final limits, so data map to pixels as they will be drawn
    pixels = [tuple(p) for p in ax.transData.transform(list(zip(xs, ys, strict=True)))]
    scale = ax.figure.dpi / 72  # points to pixels
    sizes = [(len(label) * fontsize * 0.6 * scale, fontsize * 1.2 * scale) for label in labels]
    bounds = tuple(ax.get_window_extent().extents)
    offsets = place_labels(pixels, sizes, bounds)
    for (x, y), label, (dx, dy) in zip(zip(xs, ys, strict=True), labels, offsets, strict=True):
        ax.annotate(label, (x, y), fontsize=fontsize, xytext=(dx / scale, dy / scale), textcoords="offset points",
                    ha="left" if dx >= 0 else "right", va="bottom")  # fmt: skip


def print_table(rows: list[PointRow], title: str, best: dict[str, PointRow], console: Console | None = None,
                axes: Axes = BATCH_AXES) -> None:  # fmt: skip
    """One column per ranked metric that some point logged, the best and the points that cannot
    be told from it marked; the key metrics with their 95% interval."""
    untestable = [LABELS[m] for m, top in best.items() if m not in top.intervals]
    caption = "best: the best point that measured; ≈: its 95% interval overlaps the best's (cannot be told apart)."
    if untestable:
        caption += f" No interval on the best, so no test: {', '.join(untestable)}."
    table = Table(title=title, caption=caption)
    metrics = [m for m in LABELS if any(m in r.metrics for r in rows)]
    table.add_column("point", overflow="fold")
    table.add_column("status", overflow="fold")
    for metric in metrics:
        table.add_column(LABELS[metric] + (" [95%]" if metric in axes.key_metrics else ""), justify="right")
    table.add_column("Pareto")
    answer = energy_answer(rows, best, axes)
    if answer:  # first, before the table: a winner only where the intervals say so
        (console or wide_console()).print(answer[0].upper() + answer[1:] + ".", highlight=False, soft_wrap=True)
    for r in rows:
        table.add_row(r.name, _status(r), *(_ranked_cell(r, m, axes) for m in metrics), "yes" if r.pareto else "")
    (console or wide_console()).print(table)


def _ranked_cell(row: PointRow, metric: str, axes: Axes) -> str:
    """``0.1234 best`` / ``0.1301 ≈``; a key metric's interval on a second line."""
    if metric not in row.metrics:
        return "-"
    mark = {BEST: " best", TIED: " ≈"}.get(row.verdicts.get(metric, ""), "")
    interval = row.intervals.get(metric) if metric in axes.key_metrics else None
    return f"{row.metrics[metric]:.4g}{mark}" + (f"\n[{interval.low:.4g}-{interval.high:.4g}]" if interval else "")


def _status(r: PointRow) -> str:
    """``finished`` and, on a second line, what the intervals cover and any failed replicate."""
    if r.status == Outcome.FAILED:
        return f"failed: {r.error[:60]}" if r.error else "failed"
    failed = f", {r.failed_replicates} failed" if r.failed_replicates else ""
    status = "not logged (on disk)" if r.status == Outcome.NOT_LOGGED else r.status
    return f"{status}\n{r.covers or 'no interval'}{failed}"


@dataclass
class SweepReport:
    """A sweep's report: the files in ``folder`` (summary.csv/html, pareto.png, sweep_points.json),
    and the parent run's metrics and tags (counts, the best point per metric)."""

    rows: list[PointRow]
    folder: Path
    metrics: dict[str, float]
    tags: dict[str, str]
    best: dict[str, PointRow]
    axes: Axes
    title: str


def build_report(client: Any, state: SweepState, outcomes: list[PointOutcome], folder: Path) -> SweepReport:
    """Writes the report files into ``folder`` and prints the table; reads the children's runs
    through ``client`` and writes nothing to MLflow (record/writer.py logs the report)."""
    rows = point_rows(client, outcomes)
    axes = axes_for(rows)
    mark_pareto(rows, axes)
    best = best_per_metric(rows)
    mark_verdicts(rows, best)
    keys = _swept(rows, state.swept_keys)
    replicated = f" x {state.replicates} replicates" if state.replicates > 1 else ""
    title = f"sweep {state.sweep_id}: {len(rows)} points{replicated}"
    shown_uri = redact_uri(state.tracking_uri)  # both files below are logged as artifacts
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(rows, keys, folder / names.ARTIFACT_SUMMARY_CSV, axes)
    write_html(rows, keys, folder / names.ARTIFACT_SUMMARY_HTML, state.tracking_uri, title, axes)
    plot_pareto(rows, folder / names.ARTIFACT_PARETO, title, axes)
    saved = {"sweep": {**asdict(state), "tracking_uri": shown_uri}, "points": [asdict(o) for o in outcomes]}
    (folder / names.ARTIFACT_SWEEP_POINTS).write_text(json.dumps(saved, indent=2))
    counts = count_outcomes(outcomes)
    metrics = {names.METRIC_SWEEP_POINTS: float(len(outcomes))}
    metrics |= {_COUNT_METRICS[s]: float(n) for s, n in counts.items()}
    tags = {names.TAG_SWEEP_COUNTS: " ".join(f"{k}={v}" for k, v in counts.items())}
    tags |= {names.TAG_BEST_PREFIX + metric: best_tag(metric, top, rows) for metric, top in best.items()}
    print_table(rows, title, best, axes=axes)
    return SweepReport(rows, folder, metrics, tags, best, axes, title)


