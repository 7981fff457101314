"""The benchmark child's body: the protocol on the configuration its parent saved, with every
phase's result written beside it. The zygote forks it, or starts it as
``python -m mlflow_energy.bench.child OUT_DIR ZYGOTE_PID`` where it cannot fork, or ahead of the
request as ``python -m mlflow_energy.bench.child --standby ZYGOTE_PID READY_FD``: a standby child
does its imports while the command checks the configuration, closes READY_FD, then reads its
request (one JSON line: ``out_dir``, ``env``) from stdin."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from mlflow_energy.bench.progress import ProgressHandler
from mlflow_energy.bench.stages import restart_clock
from mlflow_energy.config import to_run_config
from mlflow_energy.inference.server import ServerError
from mlflow_energy.lifetime import die_with_parent, exit_once_saved

LOG_FORMAT = "[mlflow-energy %(asctime)s] %(message)s"
BENCH_LOG = "bench.log"  # the child's progress, beside result.json
REQUEST_FILE = "bench_config.json"
STANDBY_FLAG = "--standby"


def preload(will_fork: bool = True) -> None:
    """Imports the benchmark child needs (the model classes of the shipped architectures too),
    and CodeCarbon's hardware detection where it is fork-safe (a process that will not fork, or
    no NVIDIA GPU: detection there opens NVML, whose state must not be forked). The detection
    waits a second on a program it runs (py-cpuinfo), so it runs in a thread meanwhile, once
    CodeCarbon's own imports are done. No tensor work: OpenMP must not start before a fork."""
    detect = not will_fork or not _has_nvidia_gpu()
    detection = threading.Thread(target=_detect_host_hardware, name="codecarbon-detection") if detect else None
    if detection is not None:
        # CodeCarbon's modules imported first, here: the two threads do not import them at once.
        import codecarbon.output_methods.file  # noqa: F401

        from mlflow_energy.meter import host  # noqa: F401

        detection.start()

    import torch  # noqa: F401
    from transformers import AutoConfig
    from transformers.generation import GenerationConfig, GenerationMixin  # noqa: F401
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    from mlflow_energy.bench import protocol  # noqa: F401
    from mlflow_energy.inference.models import SHIPPED_DIR, shipped_models

    for name in shipped_models():
        MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(SHIPPED_DIR / name))]  # imports the class
    if detection is not None:
        detection.join()


def _has_nvidia_gpu() -> bool:
    from mlflow_energy.meter.gpu import NvmlGpus

    probe = NvmlGpus()
    try:
        return bool(probe.devices)
    finally:
        probe.close()


def _detect_host_hardware() -> None:
    """Fills CodeCarbon's per-process hardware cache."""
    from mlflow_energy.meter.host import HostEnergy

    with tempfile.TemporaryDirectory() as tmp:
        HostEnergy("USA", None, Path(tmp))


def exit_on_sigterm() -> None:
    """The parent's timeout (or the zygote's death) sends SIGTERM: exit with 128 + 15, unwinding
    normally so the timeline and summary are saved. An exit raised where Python cannot raise (a
    weakref callback, a ``__del__``, run by the garbage collector at any moment) is swallowed
    there with a printed traceback; the signal is then sent again, by a thread started now, so
    that it lands after the callback, where it can end the child. (A thread started inside the
    hook made the hook wait for it, and on a busy machine the signal landed in that wait.)"""
    exit_code = 128 + signal.SIGTERM
    swallowed = threading.Event()

    def send_again() -> None:
        while True:
            swallowed.wait()
            swallowed.clear()
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=send_again, name="sigterm-again", daemon=True).start()

    def on_unraisable(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, SystemExit) and unraisable.exc_value.code == exit_code:
            swallowed.set()
        else:
            sys.__unraisablehook__(unraisable)

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(exit_code))
    sys.unraisablehook = on_unraisable


def run_child(out_dir: Path) -> int:
    """The child's body: run the protocol on the saved config; its exit code."""
    console = ProgressHandler(sys.stderr)
    handlers: list[logging.Handler] = [console, logging.FileHandler(out_dir / BENCH_LOG)]
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S", handlers=handlers, force=True)
    try:
        return _run_protocol(out_dir)
    finally:  # the parent prints next: its lines must not land on the progress line
        console.end_line()


def _run_protocol(out_dir: Path) -> int:
    from mlflow_energy.bench.protocol import run_protocol

    config = to_run_config(json.loads((out_dir / REQUEST_FILE).read_text()))
    exit_on_sigterm()
    try:
        run_protocol(config, out_dir, lambda r: r.write(out_dir))
    except SystemExit as stopped:  # SIGTERM: what was measured is saved; a traceback would only alarm
        assert isinstance(stopped.code, int), "only the SIGTERM handler exits, with 128 + signal"
        return stopped.code
    except ServerError as exc:  # a fault of the server, said in one sentence: its traceback is not ours
        logging.getLogger("mlflow_energy.bench").error("benchmark failed: %s", exc)
        return 1
    except BaseException:
        logging.getLogger("mlflow_energy.bench").exception("benchmark failed")
        return 1
    return 0


def apply_env(changes: dict[str, str | None], env: MutableMapping[str, str]) -> None:
    """``changes`` made to ``env``: a value of None unsets its variable."""
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


def _standby(ready_fd: int) -> int:
    """Imports, says so by closing ``ready_fd``, then waits for the request; its exit code (0
    when none came: not needed)."""
    preload(will_fork=False)
    os.close(ready_fd)
    line = sys.stdin.readline()
    if not line:
        return 0
    request = json.loads(line)
    apply_env(request["env"], os.environ)  # the zygote hands over only an env the imports did not read
    restart_clock()  # the wait for the request is not the process's start-up
    return run_child(Path(request["out_dir"]))


if __name__ == "__main__":
    die_with_parent(signal.SIGTERM, int(sys.argv[2]))
    exit_once_saved(_standby(int(sys.argv[3])) if sys.argv[1] == STANDBY_FLAG else run_child(Path(sys.argv[1])))
