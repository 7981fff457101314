"""The load a serving run sends: streaming completions from a prompt set, in a closed loop of N
users or an open loop of Poisson arrivals, with one record per request.

The generator runs its own asyncio loop in a background thread; the protocol's thread reads
its records and tells it when to stop sending. Tokens are counted from the server's ``usage``
(asked for in streaming mode), never from stream chunks: servers group tokens into chunks.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The HTTP client logs every request at INFO: thousands of lines that hide the run's progress.
for _noisy in ("httpx", "httpx2", "openai"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

WARMUP, RAMP_UP, STEADY, DRAIN = "warmup", "ramp_up", "steady", "drain"  # when a request was sent
OK, ERROR = "ok", "error"


@dataclass
class RequestRecord:
    """One request. Times are seconds on the meter clock (the power timeline's clock).

    Attributes:
        index: order of sending.
        phase: when it was sent: warmup | ramp_up | steady | drain.
        sent_s / first_token_s / end_s: request sent, first text chunk received, stream ended.
        prompt_tokens / completion_tokens: from the server's ``usage``; None when it gave none.
        chunks: stream chunks that carried text.
        status: ok | error; ``error`` says what failed.
        window: the steady-state window the request completed in (None: not counted).
        max_tokens: the ``max_tokens`` it asked for (``serving.lengths`` draws it per request).
    """

    index: int
    phase: str
    sent_s: float
    first_token_s: float | None = None
    end_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    chunks: int = 0
    status: str = OK
    error: str | None = None
    window: int | None = None
    max_tokens: int | None = None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_s is None else self.first_token_s - self.sent_s

    @property
    def latency_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.sent_s

    @property
    def tpot_ms(self) -> float | None:
        """Mean inter-token latency after the first token, ms (from usage, not chunk gaps)."""
        if self.first_token_s is None or self.end_s is None or not self.completion_tokens or self.completion_tokens < 2:
            return None
        return (self.end_s - self.first_token_s) / (self.completion_tokens - 1) * 1000

    @property
    def done(self) -> bool:
        return self.end_s is not None

    def output_tokens_between(self, start_s: float, end_s: float) -> float:
        """Its output tokens generated between ``start_s`` and ``end_s``, spread evenly over its
        time at the server (sent to ended): the usage gives the count, and servers stream in too
        few chunks to time each token (transformers serve 5.17: two or three per request)."""
        if self.status != OK or not self.completion_tokens or self.end_s is None:
            return 0.0
        if self.end_s <= self.sent_s:
            return float(self.completion_tokens) if start_s <= self.end_s <= end_s else 0.0
        overlap = min(end_s, self.end_s) - max(start_s, self.sent_s)
        return self.completion_tokens * max(0.0, overlap) / (self.end_s - self.sent_s)

    def prefilled_between(self, start_s: float, end_s: float) -> bool:
        """Its prompt was processed (first token, else end) between ``start_s`` and ``end_s``."""
        at = self.first_token_s if self.first_token_s is not None else self.end_s
        return self.status == OK and at is not None and start_s <= at <= end_s


CSV_FIELDS = ("index", "phase", "status", "window", "sent_s", "ttft_s", "tpot_ms", "latency_s", "max_tokens",
              "prompt_tokens", "completion_tokens", "tokens_in_windows", "chunks", "error")  # fmt: skip


def record_row(r: RequestRecord, windows: list[tuple[float, float]]) -> dict[str, Any]:
    """A request as a row of requests.csv; ``tokens_in_windows``: its output tokens generated
    inside ``windows`` ((start_s, end_s) of each valid steady-state window)."""
    inside = sum(r.output_tokens_between(start, end) for start, end in windows)
    return {"index": r.index, "phase": r.phase, "status": r.status, "window": r.window, "sent_s": r.sent_s,
            "ttft_s": r.ttft_s, "tpot_ms": r.tpot_ms, "latency_s": r.latency_s, "max_tokens": r.max_tokens,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens, "tokens_in_windows": inside, "chunks": r.chunks,
            "error": r.error}  # fmt: skip


@dataclass
class LoadPlan:
    """What to send and how.

    ``request_rate`` None: a closed loop of ``concurrency`` users, each sending its next request
    when the last one ends. Else Poisson arrivals at that many requests/s, at most
    ``concurrency`` in flight (later arrivals wait, as vLLM's benchmark does).
    Each request's ``max_tokens`` is drawn from ``output_tokens`` in a seeded order.
    ``fixed_length``: ask for exactly that many (vLLM's and SGLang's ``min_tokens`` and
    ``ignore_eos``); else the model stops when it stops, capped by it.
    """

    base_url: str
    model: str
    prompts: list[str]
    output_tokens: list[int]
    concurrency: int
    request_rate: float | None = None
    fixed_length: bool = False
    timeout_s: float = 300.0
    seed: int = 0


class LoadGenerator:
    """Sends the plan's requests and keeps a record of each.

    ``clock`` is the meter's clock. ``phase`` is the phase new requests are recorded under; the
    protocol moves it from ramp_up to steady to drain.
    """

    def __init__(self, plan: LoadPlan, clock: Callable[[], float]) -> None:
        self.plan = plan
        self.clock = clock
        self.records: list[RequestRecord] = []
        self.phase = RAMP_UP
        self._order = random.Random(plan.seed)
        self._gaps = random.Random(plan.seed + 1)
        self._lengths = random.Random(plan.seed + 2)
        self.arrival_gaps_s: list[float] = []  # the open loop's gaps between arrivals, as drawn
        self._stop = threading.Event()
        self._cancel_event = threading.Event()  # cancels the requests in flight (drain timeout)
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None  # what broke the generator itself, if anything

    # --- what the protocol calls ---------------------------------------------------------------
    def warm_up(self, requests: int) -> list[RequestRecord]:
        """``requests`` requests at full concurrency, waited for; their records (phase warmup)."""
        self.phase = WARMUP
        first = len(self.records)
        asyncio.run(self._warm_up(requests))
        self.phase = RAMP_UP
        return self.records[first:]

    def start(self) -> None:
        """Starts sending in the background (phase ramp_up)."""
        self._thread = threading.Thread(target=self._run, name="mlflow-energy-load", daemon=True)
        self._thread.start()

    def stop_sending(self) -> None:
        """No new request after this; those in flight go on (phase drain)."""
        self.phase = DRAIN
        self._stop.set()

    def wait_drained(self, timeout_s: float) -> bool:
        """Waits for the requests in flight; False when some were still running at the timeout
        (they are cancelled and recorded as errors)."""
        assert self._thread is not None, "wait_drained is called after start"
        self._thread.join(timeout_s)
        drained = not self._thread.is_alive()
        if not drained:
            self._cancel_event.set()
            self._thread.join(10.0)
        return drained

    def completed(self) -> list[RequestRecord]:
        return [r for r in list(self.records) if r.done]

    # --- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._load())
        except BaseException as exc:  # noqa: BLE001 - the protocol reports it
            self.failure = exc

    def _client(self) -> Any:
        from openai import AsyncOpenAI

        # No retries: a failed request is a figure (the error count), not something to hide.
        return AsyncOpenAI(base_url=self.plan.base_url, api_key="unused", max_retries=0, timeout=self.plan.timeout_s)

    async def _warm_up(self, requests: int) -> None:
        async with self._client() as client:
            gate = asyncio.Semaphore(self.plan.concurrency)

            async def one() -> None:
                async with gate:
                    await self._send(client)

            await asyncio.gather(*(one() for _ in range(requests)))

    async def _load(self) -> None:
        async with self._client() as client:
            cancel = asyncio.create_task(self._watch_cancel())
            if self.plan.request_rate is None:
                tasks = [asyncio.create_task(self._user(client)) for _ in range(self.plan.concurrency)]
            else:
                tasks = [asyncio.create_task(self._arrivals(client, self.plan.request_rate))]
            done, _ = await asyncio.wait([*tasks, cancel], return_when=asyncio.FIRST_COMPLETED)
            if cancel in done:
                for task in tasks:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            cancel.cancel()

    async def _watch_cancel(self) -> None:
        while not self._cancel_event.is_set():
            await asyncio.sleep(0.05)

    async def _user(self, client: Any) -> None:
        """One closed-loop user: the next request as soon as the last one ends."""
        while not self._stop.is_set():
            await self._send(client)

    async def _arrivals(self, client: Any, rate: float) -> None:
        """Poisson arrivals at ``rate``/s, at most ``concurrency`` in flight."""
        gate = asyncio.Semaphore(self.plan.concurrency)
        in_flight: set[asyncio.Task[None]] = set()

        async def one() -> None:
            try:
                await self._send(client)
            finally:
                gate.release()

        try:
            while True:
                gap = self._gaps.expovariate(rate)
                self.arrival_gaps_s.append(gap)
                await asyncio.sleep(gap)
                if self._stop.is_set():
                    break
                await gate.acquire()
                if self._stop.is_set():
                    gate.release()
                    break
                task = asyncio.create_task(one())
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.gather(*in_flight, return_exceptions=True)
        except asyncio.CancelledError:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            raise

    async def _send(self, client: Any) -> None:
        max_tokens = self._lengths.choice(self.plan.output_tokens)
        record = RequestRecord(len(self.records), self.phase, self.clock(), max_tokens=max_tokens)
        self.records.append(record)
        prompt = self.plan.prompts[self._order.randrange(len(self.plan.prompts))]
        extra = {"min_tokens": max_tokens, "ignore_eos": True} if self.plan.fixed_length else None
        try:
            stream = await client.completions.create(
                model=self.plan.model, prompt=prompt, max_tokens=max_tokens, stream=True,
                stream_options={"include_usage": True}, extra_body=extra,
            )  # fmt: skip
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].text:
                    if record.first_token_s is None:
                        record.first_token_s = self.clock()
                    record.chunks += 1
                if chunk.usage is not None:
                    record.prompt_tokens = chunk.usage.prompt_tokens
                    record.completion_tokens = chunk.usage.completion_tokens
            record.end_s = self.clock()
        except asyncio.CancelledError:
            record.status, record.error = ERROR, "cancelled: still running when the drain timed out"
            raise
        except Exception as exc:  # noqa: BLE001 - a failed request is recorded, counted and quoted
            record.end_s = self.clock()
            record.status, record.error = ERROR, _describe(exc)
        if record.status == OK and record.completion_tokens is None:
            record.status, record.error = ERROR, "the server sent no usage (token counts) in its stream"


def _describe(exc: Exception) -> str:
    """One line: the HTTP status and the server's message, or the connection failure."""
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", "") or exc).replace("\n", " ")[:300]
    return f"HTTP {status}: {message}" if status else f"{type(exc).__name__}: {message}"
