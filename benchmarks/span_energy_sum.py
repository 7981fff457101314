"""Do the spans' energies add up to what the GPU drew? Runs traced generate calls (each one LLM
span) back to back in ``--threads`` threads at once on the GPU, with ``mlflow_energy.autolog()``,
and reads the GPU's total-energy counter itself, apart from the tool, before the first call and
after the last. Prints the spans' figures, the most spans open at once, their sum, the counter's
rise over the same time and the difference.

    python benchmarks/span_energy_sum.py --model llama-3.2-1b --threads 1 2 4 --calls 8

The sum should fall short of the counter's rise only by the energy drawn between calls (no span
open) and by the counter's resolution at the two edges. Needs a GPU with an energy counter.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import add_workload_arguments, build_workload


def step(counter: Any) -> tuple[float, int]:
    """The counter (J) and the time (ns) of its next update: an edge as exact as the counter's."""
    first = sum(counter.energy_mj().values())
    while (now := sum(counter.energy_mj().values())) == first:
        time.sleep(0.001)
    return now / 1000, time.time_ns()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4], help="calls in flight at once")
    parser.add_argument("--calls", type=int, default=8, help="calls per thread")
    args = parser.parse_args()
    import mlflow

    import mlflow_energy
    from mlflow_energy.meter.gpu import NvmlGpus
    from mlflow_energy.store import names

    counter = NvmlGpus()
    if not any(d.has_energy_counter for d in counter.devices):
        sys.exit(f"span_energy_sum needs a GPU energy counter: {counter.unavailable_reason or 'none has one'}")
    work = build_workload(args)
    if not work.device.startswith("cuda"):
        sys.exit(f"span_energy_sum measures GPU work, but the model runs on {work.device}; use --device cuda")
    traced = mlflow.trace(span_type="LLM")(lambda: (work.call(), work.sync()))
    print(f"span_energy_sum: {work.description}, {args.calls} calls per thread")
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        mlflow.set_experiment("span-energy-sum")
        work.call()  # warm-up, untraced
        work.sync()
        mlflow_energy.autolog()
        idle_j, idle_ns = step(counter)  # meanwhile the tool learns the counter's period from its steps
        time.sleep(1.0)
        idle_w = (step(counter)[0] - idle_j) / ((time.time_ns() - idle_ns) / 1e9)
        print(f"idle: {idle_w:.4g} W")
        for threads in args.threads:
            before, started = step(counter)
            workers = [threading.Thread(target=lambda: [traced() for _ in range(args.calls)]) for _ in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            ended = time.time_ns()
            after, read = step(counter)
            drawn_j = after - before - idle_w * (read - ended) / 1e9  # less the idle wait for the step
            mlflow.flush_trace_async_logging()
            spans = [s for t in mlflow.search_traces(return_type="list") for s in t.data.spans
                     if s.start_time_ns >= started]  # fmt: skip
            figures = [s.attributes[names.SPAN_ENERGY_J] for s in spans if names.SPAN_ENERGY_J in s.attributes]
            seconds = [(s.end_time_ns - s.start_time_ns) / 1e9 for s in spans]
            most = max(s.attributes.get(names.SPAN_CONCURRENT, 0) for s in spans)
            print(f"threads {threads}: {len(spans)} spans ({len(figures)} with a figure), median "
                  f"{statistics.median(seconds):.3f} s and {statistics.median(figures):.4g} J each, at most {most} "
                  f"open at once; sum {sum(figures):.4g} J, "
                  f"counter {drawn_j:.4g} J over the loop, difference "
                  f"{100 * (sum(figures) - drawn_j) / drawn_j:+.2f}%")  # fmt: skip
        mlflow_energy.autolog(disable=True)
    counter.close()


if __name__ == "__main__":
    main()
