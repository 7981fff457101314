"""Do a run's intervals predict the next run? Runs `mlflow-energy run` itself, independently and
interleaved (point A, point B, point A, ...), several times per point, and prints for each point
every run's J/token with its stated 95% interval, then the cross-check: the share of (run, other
run of the same point) pairs where the other run's J/token lies inside this run's interval.

It checks two intervals from the same runs: the one the run states (from ``bench.processes``
benchmark processes by default: where a repeat lands), and the one a single process's windows
give (the first process's, as a run of one process states it). Goal: at least 90% for the stated
one.

    python benchmarks/interval_coverage.py --runs 3 --points workload.batch_size=8 workload.batch_size=64 -- model=llama-3.2-1b workload=standard backend=static_compile quality=off

Everything after `--` is passed to every run; each point adds its own overrides. With --out, each
run's result.json is kept there and a run already kept is not measured again (a second call
completes the first).
"""  # noqa: E501 (the example command stays on one line, to copy as it is)

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from itertools import permutations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_tool  # noqa: E402

from mlflow_energy.bench.result import BenchResult  # noqa: E402
from mlflow_energy.bench.stats import Interval, positive_interval  # noqa: E402
from mlflow_energy.bench.summary import by_process, headline_domains, per_window_j_per_token  # noqa: E402


def stated(result: BenchResult) -> Interval | None:
    s = result.summary
    if s is None or s.energy_j_per_token is None or s.energy_j_per_token_ci95_low is None:
        return None
    return Interval(s.energy_j_per_token, s.energy_j_per_token_ci95_low, s.energy_j_per_token_ci95_high, 0)


def one_process(result: BenchResult) -> Interval | None:
    """What the first process's windows alone would have stated (a run of one process)."""
    windows = [r for r in by_process(result.repetitions)[0] if r.measurement.valid]
    if not windows:
        return None
    domains = headline_domains(windows[0].measurement)[0]
    samples = per_window_j_per_token(windows, domains, result.tokens_per_call or 1)
    value = sum(r.measurement.energy_j(domains) for r in windows) / (sum(len(r.request_s) for r in windows)
                                                                       * (result.tokens_per_call or 1))  # fmt: skip
    return positive_interval(samples, value)


def coverage(intervals: list[Interval | None]) -> tuple[int, int]:
    """(held, checked): another run's value inside this run's interval, over ordered pairs."""
    pairs = [(a, b) for a, b in permutations(intervals, 2) if a is not None and b is not None]
    return sum(a.low <= b.value <= a.high for a, b in pairs), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="independent runs per point (default 3)")
    parser.add_argument("--points", nargs="+", required=True, help="one override per point (key=value[,...])")
    parser.add_argument("--out", type=Path, default=None, help="keep each run's result.json here")
    args, common = parser.parse_known_args()
    common = [a for a in common if a != "--"]
    out = args.out or Path(tempfile.mkdtemp(prefix="coverage-"))
    out.mkdir(parents=True, exist_ok=True)
    for run in range(1, args.runs + 1):
        for p, point in enumerate(args.points):
            kept = out / f"point{p}-run{run}.json"
            if kept.is_file():
                continue
            started = time.monotonic()
            with tempfile.TemporaryDirectory() as folder:
                data = run_tool(Path(folder), [*common, *point.split()])
            kept.write_text(json.dumps(data))
            print(f"{point} run {run}: {time.monotonic() - started:.0f} s", flush=True)
    totals = {"stated": [0, 0], "one process": [0, 0]}
    for p, point in enumerate(args.points):
        results = [BenchResult.from_dict(json.loads(f.read_text())) for f in sorted(out.glob(f"point{p}-run*.json"))]
        print(f"\n{point}: {len(results)} runs")
        for r in results:
            s, i, w = r.summary, stated(r), one_process(r)
            shown = f"[{i.low:.5g}-{i.high:.5g}] +-{i.relative_half_width:.1%}" if i else "no interval"
            alone = f"[{w.low:.5g}-{w.high:.5g}] +-{w.relative_half_width:.1%}" if w else "no interval"
            print(f"  {s.energy_j_per_token:.5g} J/token {shown} ({s.measurement_processes} processes, "
                  f"{s.throughput_tokens_per_s:.0f} tokens/s); first process alone {alone}")
        for label, interval_of in (("stated", stated), ("one process", one_process)):
            held, checked = coverage([interval_of(r) for r in results])
            totals[label][0] += held
            totals[label][1] += checked
            print(f"  {label}: {held} of {checked} cross-checks held")
    for label, (held, checked) in totals.items():
        share = f"{held / checked:.0%}" if checked else "-"
        print(f"all points, {label} interval: {held} of {checked} cross-checks held ({share})")


if __name__ == "__main__":
    main()
