"""How much does the hardware run context provider add to ``mlflow.start_run``? Times
``mlflow.start_run(); mlflow.end_run()`` against a SQLite store with the provider on and off
(MLFLOW_ENERGY_RUN_CONTEXT), in rounds of back-to-back runs in rotating order, and prints the
medians, their ratio and difference, with an off-vs-off control. Also prints the one-off cost of
a process's first run with the provider on (imports, NVML, /proc/cpuinfo) and the provider's own
call once its tags are cached.

    python benchmarks/run_context_overhead.py --runs 100

Goal: at most a few ms per run. Needs the package installed (pip install -e .): MLflow finds the
provider through its entry point.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SWITCH = "MLFLOW_ENERGY_RUN_CONTEXT"
PROVIDER_MODULE = "mlflow_energy.integrations.run_context"


def timed_run(on: bool) -> float:
    """Seconds of one start_run/end_run with the provider on or off."""
    import mlflow

    os.environ[SWITCH] = "1" if on else "0"
    start = time.perf_counter()
    mlflow.start_run()
    mlflow.end_run()
    return time.perf_counter() - start


def rotating(runs: int) -> dict[str, list[float]]:
    """Times of ``runs`` rounds of three back-to-back runs, provider on, off and off again (the
    control: what the host can resolve), in rotating order so drift hits each side alike."""
    sides = {"on": True, "off": False, "control": False}
    times: dict[str, list[float]] = {side: [] for side in sides}
    names = list(sides)
    for i in range(runs):
        for side in names[i % 3 :] + names[: i % 3]:
            times[side].append(timed_run(sides[side]))
    return times


def median_call_s(call: Callable[[], object], calls: int = 2000) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="rounds of three runs: on, off, off again")
    args = parser.parse_args()
    os.environ[SWITCH] = "0"  # off until the first timed run: the warm-up must not read the hardware
    import mlflow

    if PROVIDER_MODULE not in sys.modules:
        sys.exit("run_context_overhead: MLflow did not load the provider; install the package (pip install -e .).")
    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{Path(folder) / 'mlflow.db'}")
        off_warm = [timed_run(False) for _ in range(5)]  # the store's schema, the default experiment
        first_on = timed_run(True)
        times = rotating(args.runs)
    provider = sys.modules[PROVIDER_MODULE].HardwareContextProvider()
    cached_s = median_call_s(lambda: provider.in_context() and provider.tags())
    med_on, med_off, med_control = (statistics.median(times[side]) for side in ("on", "off", "control"))
    print(f"run_context_overhead: {args.runs} rounds of mlflow.start_run()+end_run() against SQLite, "
          f"tags {provider.tags()}")  # fmt: skip
    print(f"median on {med_on * 1e3:.2f} ms, off {med_off * 1e3:.2f} ms, ratio {med_on / med_off:.3f}, "
          f"difference {(med_on - med_off) * 1e3:+.2f} ms")  # fmt: skip
    print(f"control (off again) {med_control * 1e3:.2f} ms, ratio {med_control / med_off:.3f}, "
          f"difference {(med_control - med_off) * 1e3:+.2f} ms: what this host can resolve")  # fmt: skip
    print(f"first run with the provider (once per process) {first_on * 1e3:.2f} ms, "
          f"{(first_on - statistics.median(off_warm[1:])) * 1e3:+.2f} ms over a warm run without it")  # fmt: skip
    print(f"the provider's call with its tags cached: {cached_s * 1e6:.1f} us")


if __name__ == "__main__":
    main()
