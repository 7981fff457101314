"""A small OpenAI-compatible stub for the load generator's tests: it lists one model, streams
``tokens`` chunks per completion (with usage last), answers every ``fail_every``-th request
with an HTTP 500, and counts how many requests it holds at once.

A helper module, not a test module. The end-to-end tests use a real ``transformers serve``;
this stub stands in only where a test needs a server that misbehaves on purpose, or exact
control of timing-free facts (how many requests were in flight)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "stub-model"


@dataclass
class StubState:
    tokens: int = 5  # chunks per completion
    usage_tokens: int = 10  # what usage reports: servers group several tokens in a chunk
    token_s: float = 0.01  # between chunks: keeps requests in flight long enough to overlap
    fail_every: int = 0  # 0: never
    models_status: int = 200  # what GET /v1/models answers (transformers serve 5.17 answers 500 offline)
    in_flight: int = 0
    max_in_flight: int = 0
    requests: int = 0
    bodies: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    state: StubState

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return None

    def _json(self, code: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if self.path.endswith("/models") and self.state.models_status != 200:
            self._json(self.state.models_status, {"detail": "no listing"})
        elif self.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "stub"}]})
        else:
            self._json(200, {"status": "ok"})

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        state = self.state
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with state.lock:
            state.requests += 1
            number = state.requests
            state.bodies.append(body)
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        left = False

        def leave() -> None:
            # The count drops before the last byte goes out: once the client has read it, it may send the next
            # request, and that one must not find this one still counted.
            nonlocal left
            if not left:
                left = True
                with state.lock:
                    state.in_flight -= 1

        try:
            if state.fail_every and number % state.fail_every == 0:
                leave()
                self._json(500, {"error": {"message": f"stub failure {number}", "type": "server_error"}})
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for i in range(state.tokens):
                time.sleep(state.token_s)
                self._event({"choices": [{"index": 0, "text": f" t{i}"}]})
            self._event({"choices": [{"index": 0, "text": "", "finish_reason": "length"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": state.usage_tokens,
                                   "total_tokens": 3 + state.usage_tokens}})  # fmt: skip
            leave()
            self.wfile.write(b"data: [DONE]\n\n")
        finally:
            leave()

    def _event(self, payload: dict) -> None:
        chunk = {"id": "stub", "object": "text_completion", "created": 0, "model": MODEL, **payload}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()


class StubServer:
    """``with StubServer(state) as url:`` serves on 127.0.0.1 at a free port; ``url`` ends in /v1."""

    def __init__(self, state: StubState) -> None:
        handler = type("Handler", (_Handler,), {"state": state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
