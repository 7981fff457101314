"""Every benchmark script runs once in its CPU mode with tiny settings, so none can rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
TINY = ["--batch", "2", "--prompt-tokens", "16", "--new-tokens", "8"]


def bench(tmp_path: Path, script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_overhead(tmp_path: Path) -> None:
    out = bench(tmp_path, "overhead.py", *TINY, "--rounds", "5", "--calls", "2", "--breakdown")
    for variant in ("bare again", "metered", "sampler only", "CodeCarbon only"):
        assert f"\n{variant} " in out
    assert "metered/bare tokens/s: mean" in out and "busy threads, share of the metered time: sampler" in out


def test_bare_and_accuracy(tmp_path: Path) -> None:
    assert "bare tokens/s" in bench(tmp_path, "bare.py", *TINY, "--calls", "2")
    assert "no GPU on this machine" in bench(tmp_path, "accuracy.py", *TINY)


def test_repeatability(tmp_path: Path) -> None:
    out = bench(tmp_path, "repeatability.py", "--runs", "2", "--unaligned", "--bare", "--",
                "bench=quick", "quality=off", "bench.min_repetitions=3")  # fmt: skip
    runs = re.findall(r"adaptive run \d: J/token ([\d.e-]+) \[([\d.e-]+)-([\d.e-]+)\] \((\w+)\).* (\d+) windows", out)
    assert len(runs) == 2
    for value, low, high, headline, windows in runs:
        assert 0 < float(low) <= float(value) <= float(high)
        assert headline in ("measured", "estimate") and int(windows) >= 3
    spread = re.search(r"spread of the headline across 2 runs: ([\d.]+)% \(max/min - 1\); every pair of intervals overlaps: (yes|no)", out)
    assert spread and float(spread.group(1)) >= 0
    assert re.search(r"per-window CV: aligned [\d.]+% \(mean of the adaptive runs\), unaligned [\d.]+%", out)
    assert re.search(r"bare loop, same windows in this process: tokens/s CV [\d.]+%", out)


def test_vs_bare(tmp_path: Path) -> None:
    assert "tool/bare tokens/s:" in bench(tmp_path, "vs_bare.py", *TINY, "--rounds", "1", "--calls", "2")


def test_sweep_cost_and_results_table(tmp_path: Path) -> None:
    out = bench(tmp_path, "sweep_cost.py", "--points", "4", "--keep", str(tmp_path / "kept"))
    assert "4 points in" in out and "fixed cost per point" in out
    sweep_dir = next((tmp_path / "kept").glob("multirun/*/*"))
    table = bench(tmp_path, "results_table.py", str(sweep_dir))
    assert table.count("| model.dtype=") == 4
