"""Processes that end with the process that supervises them."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import NoReturn

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int, parent_pid: int) -> None:
    """Asks the kernel to send ``sig`` to this process when its parent dies (Linux; elsewhere the
    parent's kill of the process group is the only guard). The kernel watches the thread that
    started this process: a parent that starts the zygote from a short-lived thread gets a new
    zygote at its next benchmark. Exits at once if the parent is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before the request took effect
        os._exit(1)


def exit_without_teardown(code: object) -> NoReturn:
    """Exits as ``sys.exit(code)`` would at the end of the program, less the interpreter's
    teardown of every module, which writes nothing and took 2 s with torch and MLflow loaded:
    waits for the non-daemon threads, runs the exit handlers, flushes the standard streams."""
    if not isinstance(code, int):  # sys.exit's rules: None is success, anything else is printed
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    # CPython's own exit steps, in its order: threading's exit hooks (executors shut down, as
    # joblib's workers are), the non-daemon threads joined, then the exit handlers (the zygote's
    # close, logging's and MLflow's flushes).
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def exit_once_saved(code: int) -> NoReturn:
    """Exits a benchmark child whose result is saved: its log and standard streams flushed, and
    no exit handler run, as a forked child exits. Torch's handlers (the compile workers' shutdown
    above all) took 1-4 s per benchmark process on an H100, between the processes of a run."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
