"""Does measuring slow the work down? tokens/s of one generate call with the full meter running
(NVML counter reads at the window edges, the power-sampling thread, CodeCarbon's task) against
the same call bare, in one process.

Each round times one side per variant, back to back, in an order that rotates every round so
that drift (clocks, temperature, other tenants of the host) hits every variant alike:

- bare again: a second bare side, the A/A control. Its spread is what this host can resolve;
  on a host whose CPU speed wanders, no overhead smaller than that can be seen.
- metered: the meter as `mlflow-energy run` uses it, the figure for the goal.
- with --breakdown also: the sampling thread alone, and CodeCarbon alone.
- with --track also: the same calls inside ``mlflow_energy.track()``, one named window per call,
  timed inside the block (what the API costs the work); its fixed cost (meter start, reading,
  logging to a SQLite store) is printed apart.

For each variant the table gives the mean of (its tokens/s / bare tokens/s of the same round)
with a 95% interval, and the median.

    python benchmarks/overhead.py --rounds 5                        # CPU, tiny model
    python benchmarks/overhead.py --model llama-3.2-1b --batch 8 --prompt-tokens 256 --new-tokens 64 --rounds 60
    python benchmarks/overhead.py --rounds 5 --track                # mlflow_energy.track() too

Goal: at most 1% slowdown on GPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Workload, add_workload_arguments, build_workload  # noqa: E402

from mlflow_energy.bench.stats import describe, percentile  # noqa: E402
from mlflow_energy.meter.energy_meter import EnergyMeter  # noqa: E402
from mlflow_energy.meter.gpu import NvmlGpus  # noqa: E402
from mlflow_energy.meter.host import HostEnergy  # noqa: E402

SAMPLE_PERIOD_S = 0.1  # the tool's default bench.sample_period_s


class Sides:
    """The timed sides. One NVML handle set and one CodeCarbon tracker serve every side (their
    set-up is not what a run pays per window); each metered side starts its own sampling thread."""

    def __init__(self, work: Workload, calls: int, folder: Path) -> None:
        self.work, self.calls = work, calls
        on_gpu = work.device.startswith("cuda")
        self.gpus = NvmlGpus() if on_gpu else NvmlGpus(disabled_reason="CPU run")
        self.host = HostEnergy("USA", None, folder)
        self.sampler_busy_s = self.codecarbon_busy_s = self.metered_s = 0.0
        self.windows = 0
        self.track_fixed_s: list[float] = []  # track()'s own start, read and log, per side
        self._store = f"sqlite:///{folder / 'mlflow.db'}"
        self._time_codecarbon_monitor()

    def _time_codecarbon_monitor(self) -> None:
        """Clock CodeCarbon's own 1 s monitoring thread, which runs during its tasks (skipped where
        this CodeCarbon has none)."""
        scheduler = self.host.power_monitor()
        if scheduler is None:
            return
        monitor = scheduler.function

        def timed_monitor(*args: object, **kwargs: object) -> None:
            start = time.perf_counter()
            try:
                monitor(*args, **kwargs)
            finally:
                self.codecarbon_busy_s += time.perf_counter() - start

        scheduler.function = timed_monitor

    def bare(self) -> float:
        return self.work.timed(self.calls)

    def metered(self, sample_period_s: float | None, host: HostEnergy | None) -> float:
        """Seconds as the tool reports them: the duration of the meter's window."""
        meter = EnergyMeter(self.work.sync, sample_period_s, host, self.gpus)
        try:
            self.windows += 1
            with meter.window(f"overhead{self.windows}") as window:  # CodeCarbon needs unique task names
                for _ in range(self.calls):
                    self.work.call()
                    self.work.sync()  # the bench synchronizes after each call to time it
        finally:
            meter.sampler.stop()
        assert window.measurement is not None
        if sample_period_s is not None and host is not None:  # the full meter
            self.sampler_busy_s += meter.sampler.busy_s
            self.metered_s += window.measurement.duration_s
        return window.measurement.duration_s

    def tracked(self) -> float:
        """Seconds of the calls inside ``mlflow_energy.track()``, a window each, timed inside the
        block; the rest of the block's wall time is its fixed cost."""
        import mlflow

        import mlflow_energy

        mlflow.set_tracking_uri(self._store)
        begin = time.perf_counter()
        with mlflow_energy.track(tokens=self.calls * self.work.tokens_per_call) as t:
            start = time.perf_counter()
            for _ in range(self.calls):
                with t.window("call"):
                    self.work.call()
                    self.work.sync()
            elapsed = time.perf_counter() - start
        self.track_fixed_s.append(time.perf_counter() - begin - elapsed)
        return elapsed

    def variants(self, breakdown: bool, track: bool) -> dict[str, Callable[[], float]]:
        chosen = {
            "bare": self.bare,
            "bare again": self.bare,
            "metered": lambda: self.metered(SAMPLE_PERIOD_S, self.host),
        }
        if breakdown:
            chosen["sampler only"] = lambda: self.metered(SAMPLE_PERIOD_S, None)
            chosen["CodeCarbon only"] = lambda: self.metered(None, self.host)
        if track:
            chosen["track()"] = self.tracked
        return chosen

    def close(self) -> None:
        self.host.close()
        self.gpus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    parser.add_argument("--rounds", type=int, default=30, help="rounds of one side per variant (at least 3)")
    parser.add_argument("--calls", type=int, default=1, help="generate calls per side")
    parser.add_argument("--breakdown", action="store_true", help="also time the sampler and CodeCarbon alone")
    parser.add_argument("--track", action="store_true", help="also time the calls inside mlflow_energy.track()")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    work = build_workload(args)
    work.timed(2)  # warm-up identical to the measured calls
    with tempfile.TemporaryDirectory() as tmp:
        sides = Sides(work, args.calls, Path(tmp))
        variants = sides.variants(args.breakdown, args.track)
        names = list(variants)
        seconds: dict[str, list[float]] = {name: [] for name in names}
        try:
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    seconds[name].append(variants[name]())
        finally:
            sides.close()
    tokens = args.calls * work.tokens_per_call
    print(f"overhead: {work.description}, {args.calls} call(s) per side, {args.rounds} rounds")
    print(f"{'variant':<16} {'tok/s median':>12} {'ratio to bare':>14} {'95% CI':>16} {'median':>8}")
    for name in names:
        ratios = [b / s for b, s in zip(seconds["bare"], seconds[name], strict=True)]
        stats = describe(ratios)
        interval = "" if stats.ci95_low is None else f"{stats.ci95_low:.4f}-{stats.ci95_high:.4f}"
        print(f"{name:<16} {tokens / percentile(seconds[name], 50):>12.1f} {stats.mean:>14.4f} {interval:>16} "
              f"{percentile(ratios, 50):>8.4f}")  # fmt: skip
    print(f"busy threads, share of the metered time: sampler {100 * sides.sampler_busy_s / sides.metered_s:.2f}%, "
          f"CodeCarbon's monitor {100 * sides.codecarbon_busy_s / sides.metered_s:.2f}% "
          "(the most they can take from the work, less any overlap)")  # fmt: skip
    metered = describe([b / s for b, s in zip(seconds["bare"], seconds["metered"], strict=True)])
    print(f"metered/bare tokens/s: mean {metered.mean:.4f}; slowdown {100 * (1 - metered.mean):.2f}%")
    if args.track:
        tracked = describe([b / s for b, s in zip(seconds["bare"], seconds["track()"], strict=True)])
        print(f"track()/bare tokens/s: mean {tracked.mean:.4f}; slowdown {100 * (1 - tracked.mean):.2f}%; "
              f"fixed cost per block {percentile(sides.track_fixed_s, 50):.2f} s (median: start, read, log)")


if __name__ == "__main__":
    main()
