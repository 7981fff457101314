"""A pre-warmed process that forks one fresh child per benchmark.

Starting a Python process and importing torch, transformers and CodeCarbon costs seconds on
every grid point. The zygote pays it once: it imports them (never touching CUDA), then waits
for requests on stdin and forks a child for each. Every benchmark still runs in its own
process, with its own address space and its own CUDA context, and the parent can still kill
it on timeout.

A forked child cannot use CUDA if the zygote initialised it, and some libraries do on import
(torchao checks the GPU's compute capability; transformers imports it whenever it is
installed). The zygote then starts each child as a fresh Python process instead, as it does
when ``MLFLOW_ENERGY_NO_FORK=1`` is set. Protocol, one JSON or text line each way:

    parent -> zygote   {"out_dir": "...", "env": {"CUDA_VISIBLE_DEVICES": "1"}}   (null: unset it)
    zygote -> parent   started <pid>            then, when it ends: exited <pid> <code>

A code below 0 is minus the signal that killed the child, as in ``subprocess``.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _preload() -> None:
    """Imports the benchmark child needs (the model classes of the shipped architectures too),
    and CodeCarbon's hardware detection where it is fork-safe (no NVIDIA GPU: detection there
    opens NVML, whose state must not be forked). No tensor work: OpenMP must not start before
    a fork."""
    import tempfile

    import torch  # noqa: F401
    from transformers import AutoConfig
    from transformers.generation import GenerationConfig, GenerationMixin  # noqa: F401
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    from mlflow_energy.bench import protocol  # noqa: F401
    from mlflow_energy.inference.models import SHIPPED_DIR, shipped_models
    from mlflow_energy.meter.gpu import NvmlGpus

    for name in shipped_models():
        MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(SHIPPED_DIR / name))]  # imports the class

    probe = NvmlGpus()
    has_gpu = bool(probe.devices)
    probe.close()
    if not has_gpu:
        from mlflow_energy.meter.host import HostEnergy

        with tempfile.TemporaryDirectory() as tmp:
            HostEnergy("USA", None, Path(tmp))  # fills CodeCarbon's per-process hardware cache


NO_FORK_ENV = "MLFLOW_ENERGY_NO_FORK"


def _why_not_fork() -> str | None:
    """Why children cannot be forked from this process; None when they can."""
    import torch

    if os.environ.get(NO_FORK_ENV) == "1":
        return f"{NO_FORK_ENV}=1 is set"
    if torch.cuda.is_initialized():
        return "a library initialised CUDA while being imported (torchao does)"
    return None


def _apply(changes: dict[str, str | None], env: MutableMapping[str, str]) -> None:
    for key, value in changes.items():  # None: unset (the zygote's own value is stale)
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


def _fork_child(request: dict) -> tuple[int, Callable[[], int]]:
    """(pid, a call that waits for its exit code)."""
    from mlflow_energy.bench.isolation import run_child

    pid = os.fork()
    if pid == 0:
        os.dup2(2, 1)  # the child must never write into the reply channel
        _apply(request["env"], os.environ)
        code = 1
        try:
            code = run_child(Path(request["out_dir"]))
        finally:
            sys.stderr.flush()
            os._exit(code)
    return pid, lambda: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _spawn_child(request: dict) -> tuple[int, Callable[[], int]]:
    """The same child as a fresh interpreter: it pays the imports again, but forks nothing."""
    env = dict(os.environ)
    _apply(request["env"], env)
    child = subprocess.Popen(
        [sys.executable, "-m", "mlflow_energy.bench.isolation", request["out_dir"]], stdout=sys.stderr, env=env
    )
    return child.pid, child.wait


def _serve() -> None:
    _preload()
    no_fork = _why_not_fork()
    if no_fork:
        print(f"mlflow-energy: each benchmark starts a fresh Python process (a few seconds more each): {no_fork}.",
              file=sys.stderr, flush=True)  # fmt: skip
    start = _spawn_child if no_fork else _fork_child
    reply = sys.stdout
    print("ready", file=reply, flush=True)
    for line in sys.stdin:
        pid, wait = start(json.loads(line))
        print(f"started {pid}", file=reply, flush=True)
        print(f"exited {pid} {wait()}", file=reply, flush=True)


class Zygote:
    """The parent's handle on one zygote process, started on first use."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None

    def _ensure_started(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mlflow_energy.bench.zygote"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
            self._expect("ready", None)
            atexit.register(self.close)
        return self._process

    def _expect(self, word: str, timeout_s: float | None) -> list[str] | None:
        """The next reply line starting with ``word``, split; None if none came in time."""
        assert self._process is not None and self._process.stdout is not None
        if timeout_s is not None:
            ready, _, _ = select.select([self._process.stdout], [], [], max(0.0, timeout_s))
            if not ready:
                return None
        line = self._process.stdout.readline()
        if not line.startswith(word):
            raise RuntimeError(f"the benchmark zygote answered {line!r} instead of {word!r}")
        return line.split()

    def run(self, out_dir: Path, env: dict[str, str | None], timeout_s: float) -> tuple[int, bool]:
        """Runs one benchmark child: (exit code, whether it was stopped for passing timeout_s)."""
        process = self._ensure_started()
        assert process.stdin is not None
        process.stdin.write(json.dumps({"out_dir": str(out_dir), "env": env}) + "\n")
        process.stdin.flush()
        started = self._expect("started", None)
        assert started is not None
        pid, deadline = int(started[1]), time.monotonic() + timeout_s
        exited = self._expect("exited", deadline - time.monotonic())
        if exited is not None:
            return int(exited[2]), False
        os.kill(pid, signal.SIGTERM)  # the child saves what it measured, then exits
        exited = self._expect("exited", 10)
        if exited is None:
            os.kill(pid, signal.SIGKILL)
            exited = self._expect("exited", None)
        assert exited is not None
        return int(exited[2]), True

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()  # the zygote's loop ends on end of input
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None


if __name__ == "__main__":
    _serve()
