"""A pre-warmed process that forks one fresh child per benchmark.

Starting a Python process and importing torch, transformers and CodeCarbon costs seconds on
every grid point. The zygote pays it once: on the first request for a forked child it imports
them (never touching CUDA), then forks a child for each request. Every benchmark still runs in its own
process, with its own address space and its own CUDA context, and the parent can still kill
it on timeout.

A forked child cannot use CUDA if the zygote initialised it, and some libraries do on import
(torchao checks the GPU's compute capability; transformers imports it whenever it is
installed). The zygote then starts each child as a fresh Python process instead, as it does
when ``MLFLOW_ENERGY_NO_FORK=1`` is set.

A run's independent processes (bench/processes.py) are fresh interpreters too. Standby children
start ahead of their requests and do their imports side by side, while the command checks its
configuration or a sweep logs its previous point; no request is handed to one before all are
ready, so that none imports while a benchmark measures. Protocol, one JSON or text line each way:

    parent -> zygote   {"out_dir": "...", "env": {"CUDA_VISIBLE_DEVICES": "1"}}   (null: unset it)
    zygote -> parent   started <pid>            then, when it ends: exited <pid> <code>
    parent -> zygote   {"standbys": 3, "env": {...}}   (no answer: standby children start importing)

A code below 0 is minus the signal that killed the child, as in ``subprocess``.

No benchmark process outlives the parent that supervises it. The zygote runs in a process
group of its own (the terminal's Ctrl-C reaches the parent only, which stops the child itself,
see bench/interrupt.py), and each process asks the kernel to signal it when its parent dies
(``prctl(PR_SET_PDEATHSIG)``, Linux): the zygote is killed with the parent, a child gets
SIGTERM with the zygote and saves what it measured. When the zygote dies under a running
child, the parent also stops that child and waits until it is gone before reading its result,
so a result is never rewritten after it was logged.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from mlflow_energy.bench.child import STANDBY_FLAG, apply_env, preload, run_child
from mlflow_energy.bench.interrupt import StopRequest
from mlflow_energy.lifetime import die_with_parent, exit_without_teardown

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
STOP_GRACE_S = 10.0  # a child stopped with SIGTERM gets this long to save its result before SIGKILL
# Why the parent stopped a child (ChildEnd.stopped).
TIMED_OUT, INTERRUPTED, ORPHANED = "timed out", "interrupted", "orphaned"


NO_FORK_ENV = "MLFLOW_ENERGY_NO_FORK"
COMPILE_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


def compile_cache_dir(env: MutableMapping[str, str]) -> str:
    """Where the benchmark processes keep torch.compile's cache: the user's own setting, else
    under the user's caches (torch's default is under /tmp, gone at a reboot). A shape compiled
    once is then loaded from it by the next run's warm-up (on this project's CPU machine: a
    static_compile warm-up of 10.2 s, then 3.3 s)."""
    if env.get(COMPILE_CACHE_ENV):
        return env[COMPILE_CACHE_ENV]
    caches = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(caches, "mlflow-energy", "torchinductor")


def _why_not_fork() -> str | None:
    """Why children cannot be forked from this process; None when they can."""
    import torch

    if os.environ.get(NO_FORK_ENV) == "1":
        return f"{NO_FORK_ENV}=1 is set"
    if torch.cuda.is_initialized():
        return "a library initialised CUDA while being imported (torchao does)"
    return None


def _environment(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes``, for a child started from it."""
    env = dict(os.environ)
    apply_env(changes, env)
    return env


def _fork_child(request: dict) -> tuple[int, Callable[[], int]]:
    """(pid, a call that waits for its exit code)."""
    zygote = os.getpid()
    pid = os.fork()
    if pid == 0:
        die_with_parent(signal.SIGTERM, zygote)
        os.dup2(2, 1)  # the child must never write into the reply channel
        apply_env(request["env"], os.environ)
        code = 1
        try:
            code = run_child(Path(request["out_dir"]))
        finally:
            sys.stderr.flush()
            os._exit(code)
    return pid, lambda: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _spawn_child(request: dict) -> tuple[int, Callable[[], int]]:
    """The same child as a fresh interpreter: it pays the imports again, but forks nothing."""
    child = subprocess.Popen(
        [sys.executable, "-m", "mlflow_energy.bench.child", request["out_dir"], str(os.getpid())],
        stdout=sys.stderr, env=_environment(request["env"]),
    )  # fmt: skip
    return child.pid, child.wait


@dataclass
class _Standby:
    """A fresh child doing its imports ahead of its request (bench/child.py), in the environment
    ``env``; ``ready`` becomes readable when they are done (or the child ended), and is None once
    read."""

    process: subprocess.Popen
    ready: int | None
    env: dict[str, str]

    @classmethod
    def start(cls, changes: dict[str, str | None]) -> _Standby:
        env = _environment(changes)
        ready, ready_w = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow_energy.bench.child", STANDBY_FLAG, str(os.getpid()), str(ready_w)],
            stdin=subprocess.PIPE, stdout=sys.stderr, pass_fds=(ready_w,), env=env,
        )  # fmt: skip
        os.close(ready_w)
        return cls(process, ready, env)

    def suits(self, changes: dict[str, str | None]) -> bool:
        """Alive, in the environment ``changes`` make (CUDA_VISIBLE_DEVICES may be read by its imports)."""
        return self.process.poll() is None and all(self.env.get(k) == v for k, v in changes.items())

    def end(self) -> None:
        self.process.terminate()
        self.process.wait()
        if self.ready is not None:
            os.close(self.ready)
            self.ready = None


def _wait_ready(standbys: list[_Standby]) -> None:
    """Until every standby has done its imports (or ended): none may still be busy while a
    benchmark measures."""
    pending = {standby.ready: standby for standby in standbys if standby.ready is not None}
    while pending:
        readable, _, _ = select.select(list(pending), [], [])
        for ready in readable:
            os.close(ready)
            pending.pop(ready).ready = None


def _keep_standbys(standbys: list[_Standby], count: int, changes: dict[str, str | None]) -> None:
    """At least ``count`` standbys in the environment ``changes`` make, starting their imports now;
    those in another one end."""
    for standby in [standby for standby in standbys if not standby.suits(changes)]:
        standby.end()
        standbys.remove(standby)
    standbys.extend(_Standby.start(changes) for _ in range(count - len(standbys)))


def _hand_over(standbys: list[_Standby], request: dict) -> tuple[int, Callable[[], int]] | None:
    """``request`` run by the first standby, once all are ready; None where there is none or it
    does not suit the request (it died, or is in another environment: then all end, as they
    started alike)."""
    if standbys and not standbys[0].suits(request["env"]):
        for standby in standbys:
            standby.end()
        standbys.clear()
    if not standbys:
        return None
    _wait_ready(standbys)
    standby = standbys.pop(0)
    process = standby.process
    assert process.stdin is not None
    with contextlib.suppress(OSError):  # a standby that died meanwhile: a new child is started
        process.stdin.write((json.dumps(request) + "\n").encode())
        process.stdin.close()
    if process.poll() is not None:  # died while the others got ready
        standby.end()
        return None
    return process.pid, process.wait


def _serve(parent_pid: int, standbys_wanted: int) -> None:
    die_with_parent(signal.SIGKILL, parent_pid)
    reply = sys.stdout
    # A run of fresh processes gets them ready while the command still checks.
    standbys: list[_Standby] = []
    _keep_standbys(standbys, standbys_wanted, {})
    print("ready", file=reply, flush=True)
    preloaded, no_fork = False, None
    for line in sys.stdin:  # at its end (a command that refused its configuration too), no import is waited for
        request = json.loads(line)
        if "standbys" in request:
            _keep_standbys(standbys, request["standbys"], request["env"])
            continue
        # The standbys take the first requests, whatever they ask (a single run's one process too).
        handed = _hand_over(standbys, request)
        # A fresh interpreter for a run's independent processes: forked children of one zygote
        # share its level (seen on an H100: three forked processes within 0.5%, runs 2.6% apart).
        # The imports are paid on the first fork only: a run of fresh processes never needs them.
        if handed is None and not request.get("fresh") and not preloaded:
            preload()
            preloaded, no_fork = True, _why_not_fork()
            if no_fork:
                print(f"mlflow-energy: each benchmark starts a fresh Python process (a few seconds more each): "
                      f"{no_fork}.", file=sys.stderr, flush=True)  # fmt: skip
        fresh = bool(no_fork or request.get("fresh"))
        pid, wait = handed or (_spawn_child if fresh else _fork_child)(request)
        print(f"started {pid}", file=reply, flush=True)
        print(f"exited {pid} {wait()}", file=reply, flush=True)
    for standby in standbys:
        standby.end()


@dataclass(frozen=True)
class ChildEnd:
    """How a benchmark child ended: its exit code (None when unknown) and, when the parent
    stopped it, why (TIMED_OUT, INTERRUPTED, ORPHANED); None when it ended by itself."""

    code: int | None
    stopped: str | None = None


class ZygoteDied(RuntimeError):
    """The zygote's reply channel closed: it was killed or crashed."""


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, sig)


def _gone(pid: int) -> bool:
    """Ended, or a zombie its new parent has not reaped yet (no longer running either way)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    """Polls: a child of a dead zygote is not this process's child and cannot be waited for."""
    deadline = time.monotonic() + timeout_s
    while not _gone(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class Zygote:
    """The parent's handle on one zygote process, started on first use."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._pending = b""  # reply bytes read but not yet consumed as lines

    def keep_standbys(self, count: int, env: dict[str, str | None]) -> None:
        """Has at least ``count`` standby children do their imports now, in the environment ``env``
        changes, for the next requests; the zygote starts with them where it is not running."""
        if self._process is None or self._process.poll() is not None:
            self._ensure_started(count)
            return
        assert self._process.stdin is not None
        with contextlib.suppress(OSError):  # the zygote died: the next run starts another
            self._process.stdin.write((json.dumps({"standbys": count, "env": env}) + "\n").encode())
            self._process.stdin.flush()

    def _ensure_started(self, standbys: int = 0) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
            env[COMPILE_CACHE_ENV] = compile_cache_dir(env)
            self._pending = b""
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mlflow_energy.bench.zygote", str(os.getpid()), str(standbys)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True,
            )  # fmt: skip
            self._expect("ready")
            atexit.register(self.close)
        return self._process

    def _line(self, deadline: float | None, stop_fd: int | None) -> str | None:
        """The zygote's next reply line; None when ``deadline`` passed or ``stop_fd`` became
        readable first (a reply that is already there wins: a child that ended is reported as
        ended). ZygoteDied when the zygote is gone."""
        assert self._process is not None and self._process.stdout is not None
        replies = self._process.stdout.fileno()
        while b"\n" not in self._pending:
            watched = [replies] if stop_fd is None else [replies, stop_fd]
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(watched, [], [], timeout)
            if replies not in ready:
                return None
            chunk = os.read(replies, 4096)
            if not chunk:
                raise ZygoteDied("the benchmark zygote ended unexpectedly")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def _expect(self, word: str, deadline: float | None = None, stop_fd: int | None = None) -> list[str] | None:
        """The next reply line, which must start with ``word``, split; None as for ``_line``."""
        line = self._line(deadline, stop_fd)
        if line is None:
            return None
        if not line.startswith(word):
            raise RuntimeError(f"the benchmark zygote answered {line!r} instead of {word!r}")
        return line.split()

    def _exit_code(self, deadline: float | None = None, stop_fd: int | None = None) -> int | None:
        exited = self._expect("exited", deadline, stop_fd)
        return None if exited is None else int(exited[2])

    def run(self, out_dir: Path, env: dict[str, str | None], timeout_s: float, stop: StopRequest,
            fresh: bool = False) -> ChildEnd:  # fmt: skip
        """Runs one benchmark child until it ends, ``timeout_s`` passes or ``stop`` is requested;
        ``fresh``: in a new interpreter rather than forked."""
        if stop.requested:
            return ChildEnd(None, INTERRUPTED)
        process = self._ensure_started()
        assert process.stdin is not None
        process.stdin.write((json.dumps({"out_dir": str(out_dir), "env": env, "fresh": fresh}) + "\n").encode())
        process.stdin.flush()
        started = self._expect("started")
        assert started is not None
        pid = int(started[1])
        try:
            code = self._exit_code(time.monotonic() + timeout_s, stop.fileno())
            if code is not None:
                return ChildEnd(code)
            return ChildEnd(self._stop(pid), INTERRUPTED if stop.requested else TIMED_OUT)
        except ZygoteDied:
            self._end_orphan(pid)
            return ChildEnd(None, ORPHANED)

    def _stop(self, pid: int) -> int:
        """SIGTERM (the child saves what it measured, then exits), SIGKILL if it is still there
        after STOP_GRACE_S; its exit code."""
        _signal(pid, signal.SIGTERM)
        code = self._exit_code(time.monotonic() + STOP_GRACE_S)
        if code is None:
            _signal(pid, signal.SIGKILL)
            code = self._exit_code()
        assert code is not None
        return code

    def _end_orphan(self, pid: int) -> None:
        """The zygote died under a running child. The kernel sent the child SIGTERM already
        (die_with_parent); make sure it is gone before its result is read, then end the group."""
        _signal(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_GRACE_S):
            _signal(pid, signal.SIGKILL)
            _wait_gone(pid, STOP_GRACE_S)
        self.close()

    def close(self) -> None:
        """Ends the zygote (it exits at the end of its input) and anything left in its group."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            assert process.stdin is not None
            with contextlib.suppress(OSError):
                process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError):  # the group is empty: nothing to end
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
    exit_without_teardown(0)
