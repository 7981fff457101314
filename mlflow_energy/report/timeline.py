"""The power timeline plot: GPU power (or host CPU utilisation) over time, phases shaded."""

from __future__ import annotations

import math
from pathlib import Path

from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import HOST, TimelineSample

# The benchmark's phases; other names (a track() block's windows) take the next colour in turn.
PHASE_COLOURS = {"load": "tab:gray", "idle": "tab:blue", "warm-up": "tab:purple", "prefill": "tab:orange",
                 "generate": "tab:green", "quality": "tab:brown", "steady state": "tab:green"}  # fmt: skip
OTHER_COLOURS = ("tab:red", "tab:olive", "tab:cyan", "tab:pink")


def plot_timeline(samples: list[TimelineSample], phases: list[tuple[str, Measurement]], subject: str,
                  path: Path) -> Path:  # fmt: skip
    """GPU power over time, or the host's CPU utilisation where no GPU was read, with each
    ``(label, window)`` of ``phases`` shaded; the title names ``subject`` and what is plotted."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its font-cache notice is noise here
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gpu_devices = sorted({s.device for s in samples if s.device != HOST})
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    if gpu_devices:
        for device in gpu_devices:
            points = [(s.t_s, s.power_w) for s in samples if s.device == device and s.power_w is not None]
            ax.plot([t for t, _ in points], [p for _, p in points], label=f"{device} power", linewidth=1)
        ax.set_ylabel("GPU power (W)")
        title = f"{subject}: GPU power (W) over time"
    else:
        host_points = [(s.t_s, s.utilization_pct) for s in samples if s.device == HOST]
        # A missing reading (an empty CSV cell) is a gap in the line, as matplotlib draws None.
        utilization = [math.nan if u is None else u for _, u in host_points]
        ax.plot([t for t, _ in host_points], utilization, label="host CPU utilisation", linewidth=1)
        ax.set_ylabel("CPU utilisation (%)")
        title = f"{subject}: host CPU utilisation (%) over time (no GPU power to plot)"
    colours = dict(PHASE_COLOURS)
    labelled: set[str] = set()
    for label, m in phases:
        colour = colours.setdefault(label, OTHER_COLOURS[(len(colours) - len(PHASE_COLOURS)) % len(OTHER_COLOURS)])
        ax.axvspan(m.start_s, m.end_s, color=colour, alpha=0.15,
                   label=None if label in labelled else label)
        labelled.add(label)
    ax.set_xlabel("time since the meter started (s)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def phase_codes(phases: list[tuple[str, Measurement]]) -> dict[str, int]:
    """Phase label -> its code in ``system/benchmark_phase``: 1, 2... in the order phases first started."""
    started = sorted(phases, key=lambda phase: phase[1].start_s)
    return {label: code for code, label in enumerate(dict.fromkeys(label for label, _ in started), start=1)}


def phase_legend(phases: list[tuple[str, Measurement]]) -> str:
    """``1 load, 2 idle, 3 warm-up, 4 generate`` (0: between phases): the phase series' key."""
    return ", ".join(f"{code} {label}" for label, code in phase_codes(phases).items())
