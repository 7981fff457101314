"""Processes that end with the process that supervises them."""

from __future__ import annotations

import os
import sys

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
