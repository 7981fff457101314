"""Ctrl-C (and SIGTERM, as `timeout` or `kill` send it to the command) as a request to stop,
not an exception that can land anywhere.

The first Ctrl-C sets a flag and makes ``fileno()`` readable: the running benchmark is
stopped the way a timeout stops it (it saves what it measured), the tool logs that result,
the jobs of a sweep that have not started yet do not start, and the sweep's parent run is
closed with the report of what ran. The second Ctrl-C exits at once; the benchmark processes
follow (bench/zygote.py ties them to this process), and what is on disk stays there for the
next launch. The benchmark processes run in a process group of their own, so the terminal's
SIGINT reaches this process only.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType


class StopRequest:
    """This process's SIGINT (and SIGTERM) handling; one instance (``STOP``), as signals are per
    process. ``cause``: what asked to stop (``Ctrl-C`` or ``SIGTERM``)."""

    def __init__(self) -> None:
        self.requested = False
        self.cause = "Ctrl-C"
        self._pipe: tuple[int, int] | None = None
        self._exit_code = 130

    def install(self, exit_code: int, sigterm_too: bool = False) -> None:
        """Takes over SIGINT, and SIGTERM with ``sigterm_too`` (the command the user started; a
        sweep job under a cluster engine leaves SIGTERM to the engine); a no-op outside the main
        thread, where Python cannot handle signals."""
        if threading.current_thread() is not threading.main_thread():
            return
        if self._pipe is None:
            self._pipe = os.pipe()
            os.set_blocking(self._pipe[1], False)
        self._exit_code = exit_code
        signal.signal(signal.SIGINT, self._on_signal)
        if sigterm_too:
            signal.signal(signal.SIGTERM, self._on_signal)

    def fileno(self) -> int | None:
        """A descriptor that becomes readable on the first Ctrl-C (for ``select``); None when not installed."""
        return self._pipe[0] if self._pipe else None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # os.write, not print: a handler that prints can interrupt a print of the main thread.
        if self.requested:
            os.write(2, _EXIT_NOW[signum])
            os._exit(self._exit_code)
        self.requested, self.cause = True, _CAUSE[signum]
        assert self._pipe is not None
        os.write(self._pipe[1], b"!")
        os.write(2, _STOPPING[signum])


_CAUSE: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
_STOPPING: dict[int, bytes] = {
    signal.SIGINT: b"mlflow-energy: stopping: ending the running benchmark and logging what it measured "
                   b"(Ctrl-C again to exit at once).\n",
    signal.SIGTERM: b"mlflow-energy: stopping (SIGTERM): ending the running benchmark and logging what it measured "
                    b"(a second SIGTERM exits at once).\n",
}  # fmt: skip
_EXIT_NOW: dict[int, bytes] = {
    signal.SIGINT: b"mlflow-energy: second Ctrl-C: exiting now; results on disk are kept for the next launch.\n",
    signal.SIGTERM: b"mlflow-energy: second SIGTERM: exiting now; results on disk are kept for the next launch.\n",
}

STOP = StopRequest()
