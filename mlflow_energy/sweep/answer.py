"""The answer a sweep's parent run shows as its MLflow description (Markdown): the best point
per headline metric, the points that cannot be told apart from it, and every point of the grid
(reused ones included) with its figures and a link to its run that works inside the MLflow UI."""

from __future__ import annotations

from mlflow_energy.report.replicates import show
from mlflow_energy.report.run_card import HEADLINE_NOTE
from mlflow_energy.store import names
from mlflow_energy.store.uris import run_path
from mlflow_energy.sweep.report import (
    QUALITY,
    TIED,
    UNTESTED,
    Axes,
    PointRow,
    SweepReport,
    energy_answer,
    named,
)
from mlflow_energy.sweep.state import Outcome

# The questions a sweep answers, in the order the description asks them: (metric, what it asks, unit).
QUESTIONS = [
    (names.ENERGY_PER_TOKEN, "lowest energy per output token (the headline)", "J/token"),
    (names.ENERGY_PER_REQUEST, "lowest energy per request", "J/request"),
    (names.THROUGHPUT, "highest throughput", "tokens/s"),
    (names.REQUEST_P90, "lowest request latency p90", "s"),
    (QUALITY, "lowest perplexity", ""),
    (names.GPU_NET_PER_TOKEN, "lowest GPU energy per token, net of idle (what the work adds to an idle card)",
     "J/token"),
]  # fmt: skip
_STATUS = {Outcome.FINISHED: "measured", Outcome.SKIPPED: "reused from an earlier launch",
           Outcome.NOT_LOGGED: "on disk, not logged yet", Outcome.FAILED: "failed"}  # fmt: skip


def sweep_answer(report: SweepReport, comparison_path: str | None) -> str:
    """The parent run's description; ``comparison_path`` links the sweep's comparison view."""
    rows, best, axes, title = report.rows, report.best, report.axes, report.title
    text = f"### {title}\n\n"
    energy = best.get(axes.energy)
    if energy is None:
        return text + "No point measured energy: every failed point's run holds its error.\n\n" + _table(rows, axes)
    text += f"{_energy_answer(rows, energy, axes)}\n\n"
    text += _cost(energy, best.get(axes.speed), axes.speed, "{:.4g} " + axes.speed_unit, "speed")
    text += _cost(energy, best.get(QUALITY), QUALITY, "perplexity {:.4g}", "quality")
    text += f"\n{HEADLINE_NOTE}\n\n"
    if comparison_path:
        text += f"[Open the comparison of every point (charts and table)]({comparison_path})\n\n"
    text += "| question | best point | value [95%] | cannot be told apart from it |\n|---|---|---|---|\n"
    for metric, question, unit in QUESTIONS:
        if metric in best:
            top = best[metric]
            value = f"{_value(top, metric)} {unit}".strip()
            text += f"| {question} | {_link(top)} | {value} | {_tied(rows, top, metric)} |\n"
    return text + "\n" + _table(rows, axes)


def experiment_line(report: SweepReport, comparison_path: str, parent_path: str) -> str:
    """One line for the experiment's description (the UI shows its first two lines)."""
    line = f"**[Open the newest sweep's comparison]({comparison_path})**: {report.title}"
    answer = energy_answer(report.rows, report.best, report.axes)
    if answer:
        line += f"; {_cell(answer)}"
    return line + f" ([the answer]({parent_path}))."


def _energy_answer(rows: list[PointRow], energy: PointRow, axes: Axes) -> str:
    """The answer's first sentence. It names a winner only where the data can: when other points'
    intervals overlap the lowest one's, that comes first, and the lowest is only the lowest value."""
    value = f"{_link(energy)}, {_value(energy, axes.energy)} {axes.energy_unit}{_covers(energy, axes.energy)}"
    tied = named(rows, axes.energy, TIED)
    if tied:
        return (f"**{len(tied) + 1} points cannot be told apart on {axes.energy_unit} (their 95% intervals overlap); "
                f"lowest value: {value}.** The others: {', '.join(tied)}.{_untested(rows, axes.energy)}")  # fmt: skip
    if axes.energy not in energy.intervals:
        return (f"**Lowest {axes.energy_unit}: {value}.** It has no 95% interval, so whether other points can be "
                "told apart from it is not tested.")  # fmt: skip
    untested = _untested(rows, axes.energy)
    return f"**Most energy-efficient: {value}.** No other point's 95% interval overlaps it.{untested}"


def _untested(rows: list[PointRow], metric: str) -> str:
    untested = named(rows, metric, UNTESTED)
    return f" Not tested (no interval): {', '.join(untested)}." if untested else ""


def _cost(point: PointRow, top: PointRow | None, metric: str, shown: str, what: str) -> str:
    """What the most energy-efficient point costs on one other metric, against that metric's best;
    ``shown`` formats a value (``{:.4g} tokens/s``)."""
    if top is None or metric not in point.metrics:
        return ""
    if top is point:
        return f"It is also the best point for {what}: {shown.format(point.metrics[metric])}.\n"
    return (f"Its cost in {what}: {shown.format(point.metrics[metric])}, against {shown.format(top.metrics[metric])} "
            f"for the best, {_link(top)}.\n")


def _table(rows: list[PointRow], axes: Axes) -> str:
    """Every point of the grid: its key figures, trust and how it ended."""
    head = f"| point | {axes.energy_unit} [95%] | {axes.speed_unit} | perplexity | Pareto | trust | run |"
    text = f"#### Every point ({len(rows)})\n\n{head}\n|---|---|---|---|---|---|---|\n"
    for r in rows:
        cells = [_value(r, axes.energy), _value(r, axes.speed), _value(r, QUALITY), "yes" if r.pareto else "",
                 _cell(short_trust(r.trust)), _status(r)]  # fmt: skip
        text += f"| {_link(r)} | " + " | ".join(cells) + " |\n"
    return text + (f"\nPareto: no other point is better on both {axes.energy_label} and {axes.speed_label}. "
                   "Files: `summary.csv`, `summary.html` and `pareto.png` in this run's artifacts.\n")  # fmt: skip


def _status(row: PointRow) -> str:
    """How the point ended; a point whose figures are CodeCarbon's estimates is never called measured."""
    status = _STATUS.get(Outcome(row.status), row.status)
    estimated = "estimate" in short_trust(row.trust).split("; ")
    return "estimated" if status == _STATUS[Outcome.FINISHED] and estimated else status


def _link(row: PointRow) -> str:
    """The point's name linked to its run (to each replicate's run, with replicates)."""
    name = _cell(row.name)
    if not row.run_ids or row.experiment_id is None:
        return name
    if len(row.run_ids) == 1:
        return f"[{name}]({run_path(row.experiment_id, row.run_ids[0])})"
    replicates = (f"[#{i + 1}]({run_path(row.experiment_id, run_id)})"
                  for i, run_id in enumerate(row.run_ids))  # fmt: skip
    return f"{name} ({', '.join(replicates)})"


def _value(row: PointRow, metric: str) -> str:
    return show(row.metrics[metric], row.intervals.get(metric)) if metric in row.metrics else "-"


def _covers(row: PointRow, metric: str) -> str:
    return f" (95% interval over {row.covers})" if metric in row.intervals and row.covers else ""


def short_trust(trust: str) -> str:
    """``ok``, or the name of each warning (the words before its colon): ``estimate; interval
    6.0% wide, target 5%``. The sentences are in each run's description."""
    if not trust:
        return "-"
    named = [part.split(":", 1)[0] for part in trust.split("; ") if ":" in part]
    return "; ".join(named) or trust


def _tied(rows: list[PointRow], top: PointRow, metric: str) -> str:
    if metric not in top.intervals:
        return "not tested (no interval)"
    tied, untested = named(rows, metric, TIED), named(rows, metric, UNTESTED)
    text = _cell(", ".join(tied) or "none")
    return text + (f"; not tested (no interval): {_cell(', '.join(untested))}" if untested else "")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")

