"""The benchmark child's body: the protocol on the configuration its parent saved, with every
phase's result written beside it. The zygote forks it, or starts it as
``python -m mlflow_energy.bench.child OUT_DIR ZYGOTE_PID`` where it cannot fork."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from mlflow_energy.bench.lifetime import die_with_parent
from mlflow_energy.bench.progress import ProgressHandler
from mlflow_energy.config import to_run_config
from mlflow_energy.inference.server import ServerError

LOG_FORMAT = "[mlflow-energy %(asctime)s] %(message)s"
BENCH_LOG = "bench.log"  # the child's progress, beside result.json
REQUEST_FILE = "bench_config.json"


def exit_on_sigterm() -> None:
    """The parent's timeout (or the zygote's death) sends SIGTERM: exit with 128 + 15, unwinding
    normally so the timeline and summary are saved. An exit raised where Python cannot raise (a
    weakref callback, a ``__del__``, run by the garbage collector at any moment) is swallowed
    there with a printed traceback; the signal is then sent again, from another thread so that
    it lands after the callback, where it can end the child."""
    exit_code = 128 + signal.SIGTERM

    def on_unraisable(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, SystemExit) and unraisable.exc_value.code == exit_code:
            threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM)).start()
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


if __name__ == "__main__":
    die_with_parent(signal.SIGTERM, int(sys.argv[2]))
    sys.exit(run_child(Path(sys.argv[1])))
