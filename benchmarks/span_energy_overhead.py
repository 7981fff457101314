"""How much does energy on traces add to each span? Times a traced call (a root span around one
LLM span, exported to a SQLite store) with ``mlflow_energy.autolog()`` on and off, in rounds of
back-to-back calls in rotating order, with an off-vs-off control, and prints the medians, their
difference, and the span processor's own time per LLM span (median and p99), measured inside it.

    python benchmarks/span_energy_overhead.py --calls 500 [--gap-ms 20]

Calls are ``--gap-ms`` apart, as a model's own time leaves them: MLflow's exporter then keeps
up. With ``--gap-ms 0`` ended traces wait for export in a backlog, which the processor skips by
id but still walks past: the cost per span then grows with the backlog.
Goal (issue 28): at most 1 ms per span on a CPU. Where no GPU is visible, the GPU counter is a
stand-in read in-process (a GPU drawing 100 W); on a GPU machine, pass --real-gpu to read the
GPUs' own NVML counters (the read is then part of the processor's time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


class SteadyGpu:
    """A GPU drawing 100 W whose counter updates every 0.1 s, read in-process: the processor's
    work without NVML's."""

    def __init__(self) -> None:
        self._origin = time.perf_counter()

    def energy_mj(self) -> dict[int, int]:
        return {0: int((time.perf_counter() - self._origin) // 0.1 * 0.1 * 100_000)}

    def close(self) -> None:
        pass


def traced_call() -> float:
    """Seconds of one traced call: a root span around an LLM span, as an autologged request."""
    import mlflow

    start = time.perf_counter()
    with mlflow.start_span("request"), mlflow.start_span("generate", span_type="LLM") as span:
        span.set_attribute("mlflow.chat.tokenUsage", {"input_tokens": 8, "output_tokens": 32, "total_tokens": 40})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500, help="rounds of three calls: on, off, off again")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between calls (default 20)")
    parser.add_argument("--real-gpu", action="store_true", help="read the visible GPUs' own counters")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE", str(10 * args.calls + 100))  # none dropped
    import mlflow

    from mlflow_energy.adapters import mlflow_tracing
    from mlflow_energy.integrations import span_energy

    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        mlflow.set_experiment("span-energy-overhead")
        if args.real_gpu:
            processor = span_energy._start(None, 0.01)
            if processor.timeline is None:
                sys.exit(f"--real-gpu: {processor.no_counter_reason}")
        else:
            stand_in: Any = SteadyGpu()
            processor = span_energy.SpanEnergy(span_energy.CounterTimeline(stand_in, period_s=0.01))
        own: list[float] = []
        measuring = [False]  # registered once: MLflow's configure() costs ms, the switch nothing

        def timed_processor(span: Any) -> None:
            if measuring[0]:
                start = time.perf_counter()
                processor(span)
                own.append(time.perf_counter() - start)

        timed_processor.__name__ = processor.__name__
        mlflow_tracing.add_span_processor(timed_processor)
        for _ in range(20):  # MLflow's first traces set up its exporter
            traced_call()
        times: dict[str, list[float]] = {"on": [], "off": [], "control": []}
        sides = list(times)
        for i in range(args.calls):
            for side in sides[i % 3 :] + sides[: i % 3]:
                measuring[0] = side == "on"
                times[side].append(traced_call())
                time.sleep(args.gap_ms / 1000)
        mlflow.flush_trace_async_logging()
        mlflow_tracing.remove_span_processor(timed_processor)
        processor.close()
    on, off, control = (statistics.median(times[s]) * 1e3 for s in sides)
    per_call = [a + b for a, b in zip(own[0::2], own[1::2], strict=True)]  # the LLM span and its root, per call
    source = "the visible GPUs' NVML counters" if args.real_gpu else "an in-process stand-in counter"
    print(f"span_energy_overhead: {args.calls} rounds of a traced call (root + LLM span) against SQLite, "
          f"{args.gap_ms:g} ms apart, GPU counter: {source}")  # fmt: skip
    print(f"median on {on:.3f} ms, off {off:.3f} ms, difference {on - off:+.3f} ms")
    print(f"control (off again) {control:.3f} ms, difference {control - off:+.3f} ms: "
          "what this host can resolve")  # fmt: skip
    p99 = sorted(per_call)[int(0.99 * (len(per_call) - 1))] * 1e3
    print(f"the processor's own time per call (its LLM span and root span): median "
          f"{statistics.median(per_call) * 1e3:.3f} ms, "
          f"p99 {p99:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
