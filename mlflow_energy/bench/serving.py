"""The serving scenario's phases, inside the isolated child: a server under load.

load (start ``transformers serve``, window) -> cool-down -> idle baseline with the model loaded
(window) -> warm-up requests at full load (window, not counted) -> ramp-up (not measured) ->
steady-state windows of ``serving.window_s`` until ``serving.duration_s`` or
``serving.num_requests`` -> drain (not measured). A request counts when it completed inside a
window; output tokens count where they were generated (bench/summary.py). The server is
stopped whatever happens.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

from mlflow_energy.bench import stages
from mlflow_energy.bench.result import ServingRun
from mlflow_energy.bench.run_state import Run, cool_down, measure_idle
from mlflow_energy.config import RunConfig
from mlflow_energy.inference.lengths import output_cap, request_lengths
from mlflow_energy.inference.load_generator import ERROR, OK, STEADY, WARMUP, LoadGenerator, LoadPlan, RequestRecord
from mlflow_energy.inference.models import load_tokenizer, resolve_model
from mlflow_energy.inference.prompts import SHIPPED_PROMPTS, read_prompt_file
from mlflow_energy.inference.server import SERVER_LOG, ManagedServer, ServerError, pick_model, transformers_serve
from mlflow_energy.meter.measurement import Measurement

log = logging.getLogger("mlflow_energy.bench")

_POLL_S = 0.05
_SYNTHETIC_PROMPTS = 64  # distinct synthetic prompts, drawn in a seeded order
_MIN_REQUESTS_FOR_ERROR_SHARE = 10  # the error share is judged once this many requests ended


def served_gpus(config: RunConfig, device: str) -> list[int]:
    """CUDA indices whose energy a serving run counts: the managed server's device, or for an
    attached server ``serving.gpus`` (null: every visible GPU)."""
    import torch

    if config.serving.url is None:
        return [int(device.partition(":")[2] or 0)] if device.startswith("cuda") else []
    if config.serving.gpus is not None:
        return list(config.serving.gpus)
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def serving_prompts(config: RunConfig, lengths: list[int]) -> list[str]:
    """The shipped prompts, a JSONL file's, or synthetic text whose lengths in tokens follow
    ``lengths`` (random ordinary tokens of the model's tokenizer; the server's usage counts them)."""
    prompts = config.workload.prompts
    if prompts == "shipped":
        return read_prompt_file(SHIPPED_PROMPTS)
    if prompts != "synthetic":
        return read_prompt_file(Path(prompts))
    tokenizer = load_tokenizer(resolve_model(config.model), config.model)
    special = set(tokenizer.all_special_ids)
    low = max(special) + 1 if special else 0
    draw = random.Random(config.model.seed)
    sizes = [lengths[i % len(lengths)] for i in range(_SYNTHETIC_PROMPTS)]
    return [_text_of_length(tokenizer, [draw.randrange(low, len(tokenizer)) for _ in range(n)], n) for n in sizes]


def _text_of_length(tokenizer: Any, ids: list[int], length: int) -> str:
    """Text that encodes back to about ``length`` tokens (servers take text, and random ids
    decode to text that encodes to a third more): encode, cut, decode, a few times over."""
    text = tokenizer.decode(ids)
    for _ in range(5):
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == length:
            break
        text = tokenizer.decode(encoded[:length])
    return str(text)


_EXIT_GRACE_S = 5.0  # how long failed requests wait for the server's exit to explain them


class _Health:
    """Why the load must stop: the server died, the generator broke, or too many requests failed."""

    def __init__(self, server: ManagedServer | None, generator: LoadGenerator, max_error_share: float) -> None:
        self.server, self.generator, self.max_error_share = server, generator, max_error_share

    def check(self, when: str) -> None:
        if self.server is not None:
            self.server.check_alive(when)
        if self.generator.failure is not None:
            raise ServerError(f"the load generator failed {when}: {self.generator.failure!r}")
        try:
            check_error_share(self.generator.completed(), self.max_error_share, final=False)
        except ServerError:
            # A dying server closes its sockets before it is gone: on a busy machine the failed
            # requests come first. Its exit, when it follows, is the cause to report.
            if self.server is not None:
                self.server.check_alive(when, wait_s=_EXIT_GRACE_S)
            raise


def check_error_share(done: list[RequestRecord], max_share: float, final: bool) -> None:
    """ServerError quoting the first error when more than ``max_share`` of the ended requests
    failed (judged once enough ended, or at the end)."""
    errors = [r for r in done if r.status == ERROR]
    if not errors or (not final and len(done) < _MIN_REQUESTS_FOR_ERROR_SHARE):
        return
    if len(errors) / len(done) > max_share:
        raise ServerError(
            f"{len(errors)} of {len(done)} requests failed, more than serving.max_error_share={max_share:g}; "
            f"the first error: {errors[0].error}"
        )


def measure_serving(run: Run) -> None:
    config, s = run.config, run.config.serving
    server: ManagedServer | None = None
    generator: LoadGenerator | None = None
    wanted: str | None
    try:
        if s.url is None:
            server = transformers_serve(config.model, run.result.device or "cpu", s.continuous_batching,
                                        list(s.server_args), run.out_dir / SERVER_LOG)  # fmt: skip
            run.enter(f"load (starting {server.description})", stages.LOAD)
            with run.meter.window("load") as window:
                server.start(s.startup_timeout_s)
            run.result.load = window.measured()
            base_url, description, wanted = server.base_url, server.description, server.serves
        else:
            base_url, description, wanted = s.url, f"attached: {s.url}", s.model_name
            run.result.device = ", ".join(f"cuda:{d.cuda_index}" for d in run.meter.gpus.devices) or "cpu"
        # The server we started serves what we asked: only an attached one is asked what it serves.
        model = wanted if server is not None and wanted else pick_model(base_url, s.model_name or wanted)
        run.result.serving = serving = ServingRun(
            description, model, [d.cuda_index for d in run.meter.gpus.devices],
            server_pid=server.process.pid if server and server.process else None,
        )  # fmt: skip
        positions = resolve_model(config.model).max_positions if s.url is None else None
        lengths = request_lengths(s.lengths, output_cap(s.max_tokens, config.workload.prompt_tokens, positions),
                                  config.workload.prompt_tokens, config.model.seed)  # fmt: skip
        plan = LoadPlan(base_url, model, serving_prompts(config, lengths.prompt_tokens), lengths.output_tokens,
                        s.concurrency, s.request_rate, s.output_length == "fixed", s.request_timeout_s,
                        config.model.seed)  # fmt: skip
        generator = LoadGenerator(plan, run.meter.now_s)
        serving.requests = generator.records  # the same list: every save holds the requests so far
        health = _Health(server, generator, s.max_error_share)
        cool_down(run)
        measure_idle(run)
        _warm_up(run, generator, health)
        _steady_state(run, generator, health)
        _drain(run, generator)
        check_error_share([r for r in generator.completed() if r.phase != WARMUP], s.max_error_share, final=True)
    finally:
        if generator is not None:
            generator.stop_sending()
        if server is not None:
            server.stop()


def _warm_up(run: Run, generator: LoadGenerator, health: _Health) -> None:
    s = run.config.serving
    count = s.warmup_requests or s.concurrency
    run.enter(f"warm-up ({count} requests, {s.concurrency} at a time)", stages.WARMUP)
    with run.meter.window("warmup_1") as window:
        records = generator.warm_up(count)
    run.result.warmup.append(window.measured())
    failed = [r for r in records if r.status == ERROR]
    if len(failed) == len(records):
        raise ServerError(f"every warm-up request failed; the first error: {failed[0].error}")
    health.check("during the warm-up")


def _steady_state(run: Run, generator: LoadGenerator, health: _Health) -> None:
    """Ramp-up, then windows back to back until the duration or the request count is reached."""
    s, serving = run.config.serving, run.result.serving
    assert serving is not None, "set by measure_serving"
    run.enter("ramp-up" + (f" ({s.ramp_up_s:g} s)" if s.ramp_up_s is not None else " (until a request completes)"),
              stages.RAMP_UP)
    started = run.meter.now_s()
    generator.start()
    while not _ramped_up(generator, started, s.ramp_up_s, run.meter.now_s()):
        health.check("during the ramp-up")
        time.sleep(_POLL_S)
    serving.ramp_up_s = run.meter.now_s() - started
    generator.phase = STEADY
    measured_s, counted = 0.0, 0
    while measured_s < s.duration_s and (s.num_requests is None or counted < s.num_requests):
        k = len(serving.windows)
        run.enter(f"steady-state window {k + 1} ({measured_s:.1f}/{s.duration_s:g} s, {counted} requests counted)",
                  stages.WINDOWS, repeats=True)
        length = min(s.window_s, s.duration_s - measured_s)
        with run.meter.window(f"steady_{k + 1}") as window:
            deadline = time.monotonic() + length
            while time.monotonic() < deadline and not _enough(generator, counted, window.start_s, s.num_requests):
                health.check(f"during steady-state window {k + 1}")
                time.sleep(_POLL_S)
        serving.windows.append(window.measured())
        counted += _count(generator.completed(), window.measured(), k)
        measured_s += window.measured().duration_s


def _ramped_up(generator: LoadGenerator, started_s: float, ramp_up_s: float | None, now_s: float) -> bool:
    if ramp_up_s is not None:
        return now_s - started_s >= ramp_up_s
    return any(r.status == OK for r in generator.completed() if r.phase != WARMUP)


def _enough(generator: LoadGenerator, counted: int, window_start_s: float, num_requests: int | None) -> bool:
    """The request count is reached within the window that is open."""
    if num_requests is None:
        return False
    ended = sum(r.status == OK and r.end_s is not None and r.end_s >= window_start_s for r in generator.completed())
    return counted + ended >= num_requests


def _count(done: list[RequestRecord], window: Measurement, index: int) -> int:
    """Marks the requests that completed inside ``window`` as counted in it; how many."""
    inside = [r for r in done if r.status == OK and r.window is None and r.end_s is not None
              and window.start_s <= r.end_s <= window.end_s]  # fmt: skip
    for r in inside:
        r.window = index
    return len(inside)


def _drain(run: Run, generator: LoadGenerator) -> None:
    serving = run.result.serving
    assert serving is not None and serving.windows, "after the steady state"
    run.enter("drain (no new request; waiting for those in flight)", stages.DRAIN)
    last_edge = serving.windows[-1].end_s
    generator.stop_sending()
    if not generator.wait_drained(run.config.serving.request_timeout_s):
        log.warning("requests still running after serving.request_timeout_s were cancelled")
    ends = [r.end_s for r in generator.records if r.end_s is not None]
    serving.drain_s = max(0.0, max(ends, default=last_edge) - last_edge)

