"""Ctrl-C as a request to stop, not an exception that can land anywhere.

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
    """This process's SIGINT handling; one instance (``STOP``), as signals are per process."""

    def __init__(self) -> None:
        self.requested = False
        self._pipe: tuple[int, int] | None = None
        self._exit_code = 130

    def install(self, exit_code: int) -> None:
        """Takes over SIGINT; a no-op outside the main thread, where Python cannot handle signals."""
        if threading.current_thread() is not threading.main_thread():
            return
        if self._pipe is None:
            self._pipe = os.pipe()
            os.set_blocking(self._pipe[1], False)
        self._exit_code = exit_code
        signal.signal(signal.SIGINT, self._on_sigint)

    def fileno(self) -> int | None:
        """A descriptor that becomes readable on the first Ctrl-C (for ``select``); None when not installed."""
        return self._pipe[0] if self._pipe else None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        # os.write, not print: a handler that prints can interrupt a print of the main thread.
        if self.requested:
            os.write(2, b"mlflow-energy: second Ctrl-C: exiting now; results on disk are kept for the next launch.\n")
            os._exit(self._exit_code)
        self.requested = True
        assert self._pipe is not None
        os.write(self._pipe[1], b"!")
        os.write(2, b"mlflow-energy: stopping: ending the running benchmark and logging what it measured "
                    b"(Ctrl-C again to exit at once).\n")  # fmt: skip


STOP = StopRequest()
