"""A serving run's per-request files: the records as CSV, and the latency CDF plot."""

from __future__ import annotations

import csv
from pathlib import Path

from mlflow_energy.inference.load_generator import CSV_FIELDS, RequestRecord, record_row
from mlflow_energy.meter.measurement import Measurement


def write_requests_csv(records: list[RequestRecord], windows: list[Measurement], path: Path) -> Path:
    """One row per request (warm-up and drain included; ``window`` empty when not counted);
    ``windows``: the steady-state windows, whose valid ones the token attribution covers."""
    spans = [(w.start_s, w.end_s) for w in windows if w.valid]
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(record_row(r, spans) for r in records)
    return path


def plot_latency_cdf(records: list[RequestRecord], title: str, path: Path) -> Path | None:
    """Cumulative distribution of time to first token and end-to-end latency of the counted
    requests (None when none was counted)."""
    import logging

    import matplotlib

    counted = [r for r in records if r.window is not None]
    if not counted:
        return None
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for label, values in (("time to first token", [r.ttft_s for r in counted]),
                          ("end-to-end latency", [r.latency_s for r in counted])):  # fmt: skip
        ordered = sorted(v for v in values if v is not None)
        if ordered:
            ax.step(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], where="post", label=label)
    for q in (0.5, 0.9, 0.99):
        ax.axhline(q, color="gray", linewidth=0.5, linestyle=":")
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"share of the {len(counted)} counted requests")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
