"""How far can one run's headline J/token be trusted? Runs `mlflow-energy run` itself several
times on one point with the adaptive protocol (windows until the interval is within
bench.target_ci, or the time cap), and prints:

- each run's headline J/token, its 95% interval, windows, per-window CV and wall time;
- the spread of the headline across the independent runs, and whether every pair of intervals
  overlaps (goal: they agree within their intervals);
- with --thorough, the same point under bench=thorough, and the ratio of wall times
  (goal: the adaptive protocol takes no longer than thorough for any point, less for quiet ones);
- with --unaligned, one run with bench.align_to_counter=false: its per-window CV beside the
  aligned runs' shows how much of the spread was the energy counter's 100 ms steps;
- with --bare (eager, unquantized), the tokens/s CV of a bare generate loop over windows of the
  same calls: the host's own noise floor.

    python benchmarks/repeatability.py --runs 3 --thorough --unaligned -- model=llama-3.2-1b workload=standard quality=off

Everything after `--` is passed to `mlflow-energy run`.
"""  # noqa: E501 (the example command stays on one line, to copy as it is)

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import build_workload, run_tool  # noqa: E402

from mlflow_energy.bench.stats import Interval, describe  # noqa: E402


@dataclass
class Outcome:
    label: str
    interval: Interval
    windows: int
    cv: float
    wall_s: float
    headline: str
    edge_wait_s: float | None
    edge_idle_share: float | None


def measure(label: str, overrides: list[str]) -> tuple[Outcome, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run_tool(Path(tmp), overrides)
        wall_s = time.perf_counter() - started
    s, a = result["summary"], result["assessment"]
    interval = Interval(s["energy_j_per_token"], s["energy_j_per_token_ci95_low"], s["energy_j_per_token_ci95_high"],
                        s["measurement_repetitions"])  # fmt: skip
    outcome = Outcome(label, interval, s["measurement_repetitions"], s["measurement_energy_cv"], wall_s,
                      a["headline"], s.get("measurement_edge_wait_s"),
                      s.get("measurement_edge_idle_share"))  # fmt: skip
    edge_wait = "" if outcome.edge_wait_s is None else f", edge wait {outcome.edge_wait_s * 1000:.0f} ms/window"
    edge_idle = "" if outcome.edge_idle_share is None else f", idle energy removed for it {outcome.edge_idle_share:.2%}"
    print(f"{label}: J/token {interval.value:.5g} [{interval.low:.5g}-{interval.high:.5g}] ({outcome.headline}), "
          f"interval {interval.relative_half_width:.2%}, {outcome.windows} windows, per-window CV {outcome.cv:.2%}, "
          f"wall {wall_s:.0f} s" + edge_wait + edge_idle)  # fmt: skip
    return outcome, result


def bare_tokens_per_s_cv(result: dict) -> float | None:
    """CV of tokens/s over bare windows shaped like the run's; None where the bare loop cannot
    reproduce the run (another backend, quantization)."""
    config = result["config"]
    if config["backend"]["name"] != "eager" or config["model"]["quantization"] != "none":
        return None
    m, w = config["model"], config["workload"]
    args = argparse.Namespace(model=m["name"], weights=m["weights"], dtype=m["dtype"], device=result["device"],
                              batch=w["batch_size"], prompt_tokens=w["prompt_tokens"],
                              new_tokens=w["new_tokens"])  # fmt: skip
    work = build_workload(args)
    calls = len(result["repetitions"][0]["request_s"])
    work.timed(1)  # full-length warm-up, as the tool does
    speeds = [calls * work.tokens_per_call / work.timed(calls) for _ in result["repetitions"]]
    return describe(speeds).cv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="independent adaptive runs of the point")
    parser.add_argument("--thorough", action="store_true", help="also run bench=thorough and compare wall times")
    parser.add_argument("--unaligned", action="store_true", help="also run with bench.align_to_counter=false")
    parser.add_argument("--bare", action="store_true", help="also time a bare loop: the host's noise floor")
    parser.add_argument("overrides", nargs="*", help="overrides for mlflow-energy run (after --)")
    args = parser.parse_args()
    print(f"repeatability: {' '.join(args.overrides) or 'defaults'}")
    runs = [measure(f"adaptive run {i + 1}", args.overrides) for i in range(args.runs)]
    adaptive = [o for o, _ in runs]
    values = [o.interval.value for o in adaptive]
    agree = all(a.interval.overlaps(b.interval) for a, b in itertools.combinations(adaptive, 2))
    print(f"spread of the headline across {len(adaptive)} runs: {max(values) / min(values) - 1:.2%} "
          f"(max/min - 1); every pair of intervals overlaps: {'yes' if agree else 'no'}")  # fmt: skip
    mean_wall = sum(o.wall_s for o in adaptive) / len(adaptive)
    if args.thorough:
        thorough, _ = measure("bench=thorough", [*args.overrides, "bench=thorough"])
        inside = sum(thorough.interval.overlaps(o.interval) for o in adaptive)
        print(f"adaptive/thorough wall time: {mean_wall / thorough.wall_s:.2f} "
              f"({mean_wall:.0f} s / {thorough.wall_s:.0f} s); adaptive intervals overlapping thorough's: "
              f"{inside} of {len(adaptive)}")  # fmt: skip
    if args.unaligned:
        unaligned, _ = measure("align_to_counter=false", [*args.overrides, "bench.align_to_counter=false"])
        aligned_cv = sum(o.cv for o in adaptive) / len(adaptive)
        print(f"per-window CV: aligned {aligned_cv:.2%} (mean of the adaptive runs), unaligned {unaligned.cv:.2%}")
    if args.bare:
        bare_cv = bare_tokens_per_s_cv(runs[0][1])
        if bare_cv is not None:
            print(f"bare loop, same windows in this process: tokens/s CV {bare_cv:.2%} (the host's noise floor)")


if __name__ == "__main__":
    main()
