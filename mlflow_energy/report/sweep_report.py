"""The answer a sweep ends with: a console table, summary.csv, summary.html, pareto.png, and the
best child per metric, all on the parent run. Rebuilt from the store by ``mlflow-energy report``."""

from __future__ import annotations

import csv
import html
import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlflow_energy.report.console import wide_console
from mlflow_energy.report.pareto import pareto_front
from mlflow_energy.tracking import names
from mlflow_energy.tracking.sweep import PointOutcome, SweepState

log = logging.getLogger("mlflow_energy.sweep")

ENERGY, SPEED, QUALITY = names.ENERGY_PER_TOKEN, names.THROUGHPUT, names.PERPLEXITY
COLUMNS = [
    ENERGY,
    "energy/net_j_per_token",
    "energy/gpu_net_j_per_token",
    SPEED,
    "latency/ttft_s_p50",
    "latency/tpot_ms_p50",
    "emissions/g_co2e_per_1k_tokens",
    "memory/gpu_peak_mb",
    "memory/ram_peak_mb",
    "measurement/energy_cv",
    QUALITY,
]


@dataclass
class PointRow:
    """One grid point as the report shows it (a skipped point shows the run that measured it)."""

    name: str
    status: str
    run_id: str | None
    experiment_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    pareto: bool = False


def _row(client: Any, outcome: PointOutcome) -> PointRow:
    if outcome.run_id is None:
        return PointRow(outcome.name, outcome.status, None, None, error=outcome.error)
    run = client.get_run(outcome.run_id)
    error = run.data.tags.get(names.TAG_ERROR) or outcome.error
    return PointRow(outcome.name, outcome.status, outcome.run_id, run.info.experiment_id,
                    run.data.params, run.data.metrics, error)  # fmt: skip


def mark_pareto(rows: list[PointRow]) -> None:
    measured = [r for r in rows if ENERGY in r.metrics and SPEED in r.metrics]
    for i in pareto_front([r.metrics[ENERGY] for r in measured], [r.metrics[SPEED] for r in measured]):
        measured[i].pareto = True


def best_per_metric(rows: list[PointRow]) -> dict[str, PointRow]:
    best = {}
    for metric, direction in names.RANKED_METRICS.items():
        candidates = [r for r in rows if metric in r.metrics and r.status != "failed"]
        if candidates:
            pick = min if direction == "min" else max
            best[metric] = pick(candidates, key=lambda r: r.metrics[metric])
    return best


def _swept(rows: list[PointRow], keys: list[str]) -> list[str]:
    return [k for k in keys if any(k in r.params for r in rows)]


def write_csv(rows: list[PointRow], keys: list[str], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", "status", "pareto", "run_id", *keys, *COLUMNS, "error"])
        for r in rows:
            writer.writerow([r.name, r.status, r.pareto, r.run_id or "", *(r.params.get(k, "") for k in keys),
                             *(r.metrics.get(c, "") for c in COLUMNS), r.error or ""])  # fmt: skip


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


def write_html(rows: list[PointRow], keys: list[str], path: Path, ui_base: str, title: str) -> None:
    def link(r: PointRow) -> str:
        if not r.run_id:
            return html.escape(r.name)
        href = f"{ui_base}/#/experiments/{r.experiment_id}/runs/{r.run_id}"
        return f'<a href="{html.escape(href)}" target="_top">{html.escape(r.name)}</a>'

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f'<td data-v="{value!r}">{value:.4g}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["point", "status", "Pareto", *keys, *COLUMNS])
    body = "\n".join(
        "<tr>" + f"<td>{link(r)}</td>" + cell(r.status) + cell("yes" if r.pareto else "")
        + "".join(cell(r.params.get(k, "")) for k in keys)
        + "".join(cell(r.metrics.get(c, "")) for c in COLUMNS) + "</tr>"
        for r in rows
    )  # fmt: skip
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:3px 8px}}
th{{cursor:pointer;background:#eee}} td[data-v]{{text-align:right}}</style></head><body>
<h2>{html.escape(title)}</h2><p>Click a column header to sort. Energy per token is gross (all measured
domains); Pareto: no other point has both lower J/token and higher tokens/s.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table><script>{_SORT_JS}</script></body></html>
""")


def plot_pareto(rows: list[PointRow], path: Path, title: str) -> bool:
    """J/token against tokens/s (and against perplexity where measured); False with no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if ENERGY in r.metrics and SPEED in r.metrics]
    if not measured:
        return False
    with_quality = [r for r in measured if QUALITY in r.metrics]
    panels = 2 if with_quality else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 5), dpi=100, squeeze=False)
    _scatter(axes[0][0], measured, SPEED, "tokens/s (higher is better)", [r.pareto for r in measured])
    if with_quality:
        front = set(pareto_front([r.metrics[ENERGY] for r in with_quality], [-r.metrics[QUALITY] for r in with_quality]))
        _scatter(axes[0][1], with_quality, QUALITY, "perplexity (lower is better)",
                 [i in front for i in range(len(with_quality))])  # fmt: skip
    keys = [part.partition("=")[0] for part in rows[0].name.split(",") if "=" in part]
    fig.suptitle(f"{title}\npoints labelled by {', '.join(keys)}" if keys else title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _short(name: str) -> str:
    """``model.dtype=float32,workload.batch_size=4`` -> ``float32, 4`` (keys are in the title)."""
    return ", ".join(part.rpartition("=")[2] for part in name.split(","))


def _scatter(ax: Any, rows: list[PointRow], x_metric: str, x_label: str, on_front: list[bool]) -> None:
    xs, ys = [r.metrics[x_metric] for r in rows], [r.metrics[ENERGY] for r in rows]
    ax.scatter(xs, ys, c=["tab:red" if f else "tab:gray" for f in on_front], zorder=3)
    front = sorted((x, y) for x, y, f in zip(xs, ys, on_front) if f)
    ax.plot([x for x, _ in front], [y for _, y in front], color="tab:red", linewidth=1, label="Pareto front")
    for x, y, r in zip(xs, ys, rows):
        ax.annotate(_short(r.name), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(x_label)
    ax.set_ylabel("energy per token, J (lower is better)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def print_table(rows: list[PointRow], title: str, console: Console | None = None) -> None:
    table = Table(title=title)
    for header in ["point", "status", "J/token", "net J/token", "tokens/s", "TTFT p50 s", "g CO2e/1k tok", "perplexity", "Pareto"]:
        table.add_column(header, justify="left" if header in ("point", "status") else "right")

    def fmt(r: PointRow, key: str) -> str:
        return f"{r.metrics[key]:.4g}" if key in r.metrics else "-"

    for r in rows:
        status = r.status if not r.error or r.status != "failed" else f"failed: {r.error[:60]}"
        table.add_row(r.name, status, fmt(r, ENERGY), fmt(r, "energy/net_j_per_token"), fmt(r, SPEED),
                      fmt(r, "latency/ttft_s_p50"), fmt(r, "emissions/g_co2e_per_1k_tokens"), fmt(r, QUALITY),
                      "yes" if r.pareto else "")  # fmt: skip
    (console or wide_console()).print(table)


def build_report(client: Any, state: SweepState, outcomes: list[PointOutcome], folder: Path) -> list[PointRow]:
    """Writes the report files into ``folder``, logs them to the parent, tags the best children."""
    from mlflow.entities import Metric, RunTag

    rows = [_row(client, o) for o in outcomes]
    mark_pareto(rows)
    keys = _swept(rows, state.swept_keys)
    title = f"sweep {state.sweep_id}: {len(rows)} points"
    ui_base = state.tracking_uri.rstrip("/") if state.tracking_uri.startswith("http") else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(rows, keys, folder / names.ARTIFACT_SUMMARY_CSV)
    write_html(rows, keys, folder / names.ARTIFACT_SUMMARY_HTML, ui_base, title)
    plot_pareto(rows, folder / names.ARTIFACT_PARETO, title)
    saved = {"sweep": asdict(state), "points": [asdict(o) for o in outcomes]}
    (folder / names.ARTIFACT_SWEEP_POINTS).write_text(json.dumps(saved, indent=2))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("finished", "failed", "skipped")}
    metrics = {names.METRIC_SWEEP_POINTS: len(outcomes), names.METRIC_SWEEP_FINISHED: counts["finished"],
               names.METRIC_SWEEP_FAILED: counts["failed"], names.METRIC_SWEEP_SKIPPED: counts["skipped"]}  # fmt: skip
    tags = {names.TAG_SWEEP_COUNTS: " ".join(f"{k}={v}" for k, v in counts.items())}
    for metric, row in best_per_metric(rows).items():
        tags[names.TAG_BEST_PREFIX + metric] = f"{row.name} ({row.run_id}): {row.metrics[metric]:.4g}"
    now_ms = int(time.time() * 1000)  # a resumed sweep's counts replace the last launch's
    client.log_batch(state.parent_run_id, metrics=[Metric(k, v, now_ms, 0) for k, v in metrics.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])  # fmt: skip
    client.log_artifacts(state.parent_run_id, str(folder))
    print_table(rows, title)
    return rows


def finish_sweep(state: SweepState, outcomes: list[PointOutcome], sweep_dir: Path) -> int:
    """Closes the parent run with its report; returns how many points failed."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=state.tracking_uri)
    build_report(client, state, outcomes, sweep_dir / "report")
    failed = sum(o.status == "failed" for o in outcomes)
    client.set_terminated(state.parent_run_id, "FINISHED")
    log.info(
        "sweep %s done: %d finished, %d failed, %d skipped; report on parent run %s",
        state.sweep_id, sum(o.status == "finished" for o in outcomes), failed,
        sum(o.status == "skipped" for o in outcomes), state.parent_run_id,
    )  # fmt: skip
    return failed


def rebuild_report(tracking_uri: str, experiment: str, sweep_id: str | None, folder: Path | None) -> list[PointRow]:
    """``mlflow-energy report``: the same report from what is stored (the parent's sweep_points.json)."""
    from mlflow.tracking import MlflowClient

    from mlflow_energy.tracking.logger import search_experiment_runs

    client = MlflowClient(tracking_uri=tracking_uri)
    _, parents = search_experiment_runs(client, experiment, f"tags.`{names.TAG_SWEEP_PARENT}` = 'true'", sweep_id,
                                        order_by=["attributes.start_time DESC"])  # fmt: skip
    if not parents:
        which = f"sweep {sweep_id!r}" if sweep_id else "any sweep"
        raise LookupError(f"experiment {experiment!r} holds no parent run of {which}; check --sweep.")
    parent = parents[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(client.download_artifacts(parent.info.run_id, names.ARTIFACT_SWEEP_POINTS, tmp))
        saved = json.loads(path.read_text())
    outcomes = [PointOutcome(**o) for o in saved["points"]]
    state = SweepState(**{**saved["sweep"], "tracking_uri": tracking_uri})
    if folder is None:
        with tempfile.TemporaryDirectory() as tmp:
            return build_report(client, state, outcomes, Path(tmp))
    return build_report(client, state, outcomes, folder)
