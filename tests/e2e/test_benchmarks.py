"""Every benchmark script runs once on the CPU with tiny settings, so none can rot, and its
figures are read back: each is a finite, positive number where it must be, the counts match
the arguments, and the figures agree with one another (a ratio with the values it divides, a
mean with its rows, a table with the result files). Nothing here depends on timing: how fast
the tool is, is what the scripts measure, not what the tests assert."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from processes import REPO, cli_env

pytestmark = pytest.mark.e2e
BENCHMARKS = REPO / "benchmarks"
TINY = ["--batch", "2", "--prompt-tokens", "16", "--new-tokens", "8", "--device", "cpu"]
DESCRIPTION = "tiny (random, float32) on cpu, batch 2, 16 prompt + 8 new tokens"
NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def bench(tmp_path: Path, script: str, *args: str) -> list[str]:
    """The script's printed lines; no GPU is visible to it (sweep_cost.py has no device option),
    so the figures are the CPU's on any machine."""
    env = cli_env({"CUDA_VISIBLE_DEVICES": ""})
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def numbers(pattern: str, line: str) -> tuple[float, ...]:
    """The groups of ``pattern`` (which must match the whole line) as numbers, each finite."""
    found = re.fullmatch(pattern, line)
    assert found, f"{line!r} does not read {pattern!r}"
    values = tuple(float(g.replace(",", "")) for g in found.groups())
    assert all(math.isfinite(v) for v in values), line
    return values


def test_overhead(tmp_path: Path) -> None:
    lines = bench(tmp_path, "overhead.py", *TINY, "--rounds", "3", "--calls", "1", "--breakdown", "--track")
    assert lines[0] == f"overhead: {DESCRIPTION}, 1 call(s) per side, 3 rounds"
    variants = ["bare", "bare again", "metered", "sampler only", "CodeCarbon only", "track()"]
    rows = {}
    for name, line in zip(variants, lines[2:8], strict=True):
        # name, tokens/s (median side), mean ratio to bare, its 95% interval, median ratio
        rows[name] = numbers(rf"{re.escape(name)} +({NUMBER}) +({NUMBER}) +({NUMBER})-({NUMBER}) +({NUMBER})", line)
    for name, (speed, mean, low, high, median) in rows.items():
        assert speed > 0 and mean > 0 and median > 0, name
        assert low <= mean <= high, name
    assert rows["bare"][1:] == (1.0, 1.0, 1.0, 1.0)  # bare against itself, round by round
    busy = (rf"busy threads, share of the metered time: sampler ({NUMBER})%, CodeCarbon's monitor ({NUMBER})% "
            r"\(the most they can take from the work, less any overlap\)")
    sampler, codecarbon = numbers(busy, lines[8])
    assert 0 <= sampler < 100 and 0 <= codecarbon < 100
    mean, slowdown = numbers(rf"metered/bare tokens/s: mean ({NUMBER}); slowdown ({NUMBER})%", lines[9])
    assert mean == rows["metered"][1] and slowdown == pytest.approx(100 * (1 - mean), abs=0.011)
    tracked = (rf"track\(\)/bare tokens/s: mean ({NUMBER}); slowdown ({NUMBER})%; "
               rf"fixed cost per block ({NUMBER}) s \(median: start, read, log\)")
    mean, slowdown, fixed = numbers(tracked, lines[10])
    assert mean == rows["track()"][1] and slowdown == pytest.approx(100 * (1 - mean), abs=0.011) and fixed > 0
    assert len(lines) == 11


def test_bare_and_accuracy(tmp_path: Path) -> None:
    header, speed = bench(tmp_path, "bare.py", *TINY, "--calls", "2")  # no GPU line on a CPU
    assert header == f"bare: {DESCRIPTION}, 2 calls"
    assert numbers(rf"bare tokens/s ({NUMBER})", speed)[0] > 0
    assert bench(tmp_path, "accuracy.py", *TINY) == [
        "accuracy: no GPU on this machine, nothing to compare (the CPU figures come from CodeCarbon)."]  # fmt: skip
    (no_gpu,) = bench(tmp_path, "sparse_linear.py")
    assert no_gpu == ("sparse_linear: no GPU on this machine; PyTorch's semi-structured sparse kernels run on CUDA "
                      "GPUs only.")  # fmt: skip


def measured(line: str, label: str) -> dict[str, float | str]:
    """One `mlflow-energy run` line of repeatability.py, checked for consistency."""
    pattern = (rf"{re.escape(label)}: J/token ({NUMBER}) \[({NUMBER})-({NUMBER})\] \((measured|estimate)\), "
               rf"interval ({NUMBER})%, (\d+) windows, per-window CV ({NUMBER})%, wall ({NUMBER}) s"
               # the edge figures, where the run recorded them
               r"(?:, edge wait \d+ ms/window)?(?:, idle energy removed for it \d+\.\d+%)?")
    found = re.fullmatch(pattern, line)
    assert found, line
    value, low, high, width, windows, cv, wall = (float(found.group(i)) for i in (1, 2, 3, 5, 6, 7, 8))
    assert 0 < low <= value <= high and cv >= 0 and wall > 0
    assert windows >= 3  # bench.min_repetitions below
    # The printed interval is the half-width relative to the value (5 significant digits each).
    assert width == pytest.approx(100 * (high - low) / 2 / value, abs=0.01 + 100 * 1e-4 * high / value)
    return {"value": value, "low": low, "high": high, "cv": cv, "headline": found.group(4)}


def test_repeatability(tmp_path: Path) -> None:
    overrides = ["bench=quick", "quality=off", "bench.min_repetitions=3", "bench.idle_s=0.2",
                 "bench.min_duration_s=0.5", "bench.max_duration_s=1", "device=cpu"]  # fmt: skip
    lines = bench(tmp_path, "repeatability.py", "--runs", "2", "--unaligned", "--bare", "--", *overrides)
    assert lines[0] == f"repeatability: {' '.join(overrides)}"
    runs = [measured(lines[1], "adaptive run 1"), measured(lines[2], "adaptive run 2")]
    assert runs[0]["headline"] == runs[1]["headline"]  # the same machine measures the same domains
    spread, = numbers(rf"spread of the headline across 2 runs: ({NUMBER})% \(max/min - 1\); "
                      r"every pair of intervals overlaps: (?:yes|no)", lines[3])  # fmt: skip
    values = [r["value"] for r in runs]
    assert spread == pytest.approx(100 * (max(values) / min(values) - 1), abs=0.011 + 0.01 * max(values) / min(values))
    overlap = runs[0]["low"] <= runs[1]["high"] and runs[1]["low"] <= runs[0]["high"]
    assert lines[3].endswith("overlaps: yes" if overlap else "overlaps: no")
    unaligned = measured(lines[4], "align_to_counter=false")
    aligned_cv, unaligned_cv = numbers(rf"per-window CV: aligned ({NUMBER})% \(mean of the adaptive runs\), "
                                       rf"unaligned ({NUMBER})%", lines[5])  # fmt: skip
    assert aligned_cv == pytest.approx((runs[0]["cv"] + runs[1]["cv"]) / 2, abs=0.011)
    assert unaligned_cv == unaligned["cv"]
    bare_cv, = numbers(rf"bare loop, same windows in this process: tokens/s CV ({NUMBER})% \(the host's noise floor\)",
                       lines[6])  # fmt: skip
    assert bare_cv >= 0
    assert len(lines) == 7


def test_vs_bare(tmp_path: Path) -> None:
    lines = bench(tmp_path, "vs_bare.py", *TINY, "--rounds", "1", "--calls", "1", "--", "bench=quick",
                  "bench.idle_s=0.2", "bench.min_duration_s=0.5", "bench.max_duration_s=1")  # fmt: skip
    assert lines[0] == f"vs_bare: {DESCRIPTION}"
    found = re.fullmatch(r"bare tokens/s (.+); tool tokens/s (.+)", lines[1])
    assert found, lines[1]
    bare = [float(v) for v in found.group(1).split(", ")]
    tool = [float(v) for v in found.group(2).split(", ")]
    assert (len(bare), len(tool)) == (2, 1)  # --rounds 1: bare before and after the tool's run
    assert all(math.isfinite(v) and v > 0 for v in bare + tool)
    ratio, = numbers(rf"tool/bare tokens/s: ({NUMBER})", lines[2])
    # The ratio of the means, from values printed to 0.1 tokens/s.
    assert ratio == pytest.approx(sum(tool) / len(tool) / (sum(bare) / len(bare)), rel=0.05 / min(bare + tool) + 1e-4)
    assert len(lines) == 3


def test_sweep_cost_and_results_table(tmp_path: Path) -> None:
    lines = bench(tmp_path, "sweep_cost.py", "--points", "4", "--keep", str(tmp_path / "kept"))
    points = {f"model.dtype={d},workload.batch_size={b}" for d in ("float32", "bfloat16") for b in (1, 4)}
    assert lines[0].split() == ["point", "wall", "s", "load", "s", "work", "s", "fixed", "s"]
    walls, fixed_costs = [], []
    for line in lines[1:5]:
        name, *figures = line.split()
        wall, load, work, fixed = (float(f) for f in figures)
        assert name in points and wall > 0 and load > 0 and work > 0
        # The measured work and the model load happen inside the point's wall time.
        assert fixed == pytest.approx(wall - work, abs=0.011) and load <= fixed + 0.01
        walls.append(wall)
        fixed_costs.append(fixed)
        points.discard(name)
    assert points == set()
    total, mean_fixed, rest = numbers(rf"4 points in ({NUMBER}) s of wall time; fixed cost per point ({NUMBER}) s on "
                                      rf"average \(sweep start and report: ({NUMBER}) s\)", lines[5])  # fmt: skip
    assert mean_fixed == pytest.approx(sum(fixed_costs) / 4, abs=0.011)
    assert rest == pytest.approx(total - sum(walls), abs=0.1) and rest > 0  # the points ran one after another
    assert len(lines) == 6

    sweep_dir = next((tmp_path / "kept").glob("multirun/*/*"))
    table = bench(tmp_path, "results_table.py", str(sweep_dir))
    assert table[0].startswith("| grid point (overrides) | tokens/s | GPU J/token gross |")
    assert table[1].startswith("|---|")
    results = {json.loads(p.read_text())["name"]: json.loads((p.parent / "result.json").read_text())
               for p in sweep_dir.rglob("mlflow_energy_outcome.json")}  # fmt: skip
    assert len(results) == 4 and len(table) == 2 + 4
    for row in table[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        name, speed, gross, net, ttft_ms, power, idle, compile_s = cells
        summary = results.pop(name)["summary"]
        assert speed == f"{summary['throughput_tokens_per_s']:,.0f}" and float(speed.replace(",", "")) > 0
        assert ttft_ms == f"{summary['latency_ttft_s_p50'] * 1000:.1f}" and float(ttft_ms) > 0
        assert [gross, net, power, idle, compile_s] == ["-"] * 5  # a CPU run, eager: no GPU figures, no compilation
    assert results == {}


def test_run_context_overhead(tmp_path: Path) -> None:
    lines = bench(tmp_path, "run_context_overhead.py", "--runs", "3")
    assert lines[0].startswith("run_context_overhead: 3 rounds of mlflow.start_run()+end_run() against SQLite, tags {")
    assert "'mlflow_energy.gpu_count': '0'" in lines[0]  # MLflow found the provider; no GPU is visible
    on, off, ratio, difference = numbers(
        rf"median on ({NUMBER}) ms, off ({NUMBER}) ms, ratio ({NUMBER}), difference \+?({NUMBER}) ms", lines[1])
    assert on > 0 and off > 0 and ratio == pytest.approx(on / off, abs=0.01)
    assert difference == pytest.approx(on - off, abs=0.011)
    control, control_ratio, _ = numbers(rf"control \(off again\) ({NUMBER}) ms, ratio ({NUMBER}), difference "
                                        rf"\+?({NUMBER}) ms: what this host can resolve", lines[2])  # fmt: skip
    assert control > 0 and control_ratio == pytest.approx(control / off, abs=0.01)
    first, _ = numbers(rf"first run with the provider \(once per process\) ({NUMBER}) ms, \+?({NUMBER}) ms over a "
                       r"warm run without it", lines[3])  # fmt: skip
    assert first > 0
    assert numbers(rf"the provider's call with its tags cached: ({NUMBER}) us", lines[4])[0] >= 0
    assert len(lines) == 5


def test_interval_coverage(tmp_path: Path) -> None:
    # Three processes even where only CodeCarbon's estimate is there (as in CI): the merging path.
    overrides = ["bench=quick", "quality=off", "bench.processes=3", "bench.estimate_processes=3", "bench.idle_s=0.2",
                 "bench.min_duration_s=0.5", "bench.max_duration_s=1", "device=cpu"]  # fmt: skip
    kept = tmp_path / "kept"
    args = ["--out", str(kept), "--points", "workload.batch_size=2", "--", *overrides]
    bench(tmp_path, "interval_coverage.py", "--runs", "1", *args)
    # A second run as a copy of the first (each run costs three fresh processes): a call with
    # --out measures only the runs it does not hold yet, here none.
    (kept / "point0-run2.json").write_text((kept / "point0-run1.json").read_text())
    lines = bench(tmp_path, "interval_coverage.py", "--runs", "2", *args)
    assert not any(line.endswith(" s") for line in lines)  # nothing measured again
    runs = [line for line in lines if "J/token" in line and "first process alone" in line]
    assert len(runs) == 2 and all("(3 processes," in line for line in runs)
    for label in ("stated", "one process"):
        held, checked, share = numbers(rf"all points, {label} interval: ({NUMBER}) of ({NUMBER}) cross-checks held "
                                       rf"\(({NUMBER})%\)", lines[-2 if label == "stated" else -1])  # fmt: skip
        assert checked == 2 and 0 <= held <= 2 and share == pytest.approx(100 * held / checked, abs=0.5)


def test_fixed_cost(tmp_path: Path) -> None:
    lines = bench(tmp_path, "fixed_cost.py", "--", "bench=quick", "quality=off", "bench.idle_s=0.2",
                  "bench.min_duration_s=0.5", "bench.max_duration_s=1", "device=cpu")  # fmt: skip
    labels = ("single run, new store", "single run, next one", "sweep point")
    fixed = []
    for line, label in zip(lines, labels, strict=False):
        cost, logged, wall = numbers(rf"{label}: fixed cost ({NUMBER}) s of ({NUMBER}) s logged \(({NUMBER}) s for the "
                                     r"whole command\); .*", line)  # fmt: skip
        assert 0 < cost < logged <= wall
        assert "load " in line and "windows " in line and "logging " in line
        fixed.append(cost)
    assert "startup " in lines[0] and "startup " not in lines[2]  # a sweep pays its start-up once, not per point
    ratio = numbers(rf"next single run's fixed cost / sweep point's: ({NUMBER})", lines[3])[0]
    # Of the printed figures, to 2 decimals each: a sweep point's fixed cost may be under a second.
    assert ratio == pytest.approx(fixed[1] / fixed[2], rel=0.02) and len(lines) == 4


def test_serving_waves(tmp_path: Path) -> None:
    cache = 'serving.server_args=["--cb-num-blocks","64","--cb-max-batch-tokens","256"]'
    lines = bench(tmp_path, "serving_waves.py", "--lengths", "chat", "--", "device=cpu", "bench.idle_s=0.2",
                  "serving.duration_s=3", "serving.window_s=1", "serving.warmup_requests=1", "serving.max_tokens=24",
                  cache)  # fmt: skip
    assert len(lines) == 1
    distinct, low, high, spread = numbers(
        rf"serving.lengths=chat: ({NUMBER}) distinct max_tokens asked \(({NUMBER})-({NUMBER})\); requests per "
        rf"window \[[\d, ]+\] \(coefficient of variation ({NUMBER})\); {NUMBER} J/token "
        rf"(?:\[{NUMBER}-{NUMBER}\]|no interval); {NUMBER} s", lines[0])  # fmt: skip
    assert distinct > 1 and 1 <= low < high <= 24 and spread >= 0


def test_span_energy_overhead(tmp_path: Path) -> None:
    lines = bench(tmp_path, "span_energy_overhead.py", "--calls", "5", "--gap-ms", "1")
    assert lines[0] == ("span_energy_overhead: 5 rounds of a traced call (root + LLM span) against SQLite, 1 ms apart, "
                        "GPU counter: an in-process stand-in counter")  # fmt: skip
    on, off, difference = numbers(rf"median on ({NUMBER}) ms, off ({NUMBER}) ms, difference \+?({NUMBER}) ms", lines[1])
    assert on > 0 and off > 0 and difference == pytest.approx(on - off, abs=0.002)
    control, _ = numbers(rf"control \(off again\) ({NUMBER}) ms, difference \+?({NUMBER}) ms: what this host can "
                         r"resolve", lines[2])  # fmt: skip
    assert control > 0
    median, p99 = numbers(rf"the processor's own time per call \(its LLM span and root span\): median ({NUMBER}) ms, "
                          rf"p99 ({NUMBER}) ms", lines[3])  # fmt: skip
    assert 0 < median <= p99
    assert len(lines) == 4
