"""The real CLI from tests: one command path, one environment, one way to read a run's store,
the short benchmark settings the end-to-end tests share, a command started in a session of its
own (``Launch``; the ``launch`` fixture in tests/e2e/faults/conftest.py ends what a test leaves), and
a real `mlflow server` (``TrackingServer``) on a free port (``free_port``).

A helper module, not a test module: tests import from here (and from fake_nvml.py), never from
one another; fixtures live in the conftest.py files."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]  # the repository's root: tests/ sits in it
CLI = str(Path(sys.executable).parent / "mlflow-energy")
_TERMINAL = ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")

# A grid point in about a second: few, short windows.
QUICK = ["bench=quick", "bench.idle_s=0.2", "bench.min_repetitions=3", "bench.min_duration_s=0.5"]
# Shorter still: the windows capped at a second, no perplexity.
QUICK_NO_QUALITY = [*QUICK, "bench.max_duration_s=1", "quality=off"]
# A serving point in seconds: short windows, one warm-up request, a short idle baseline.
QUICK_SERVING = ["scenario=serving", "bench.idle_s=0.2", "serving.duration_s=3", "serving.window_s=1",
                 "serving.warmup_requests=1", "serving.max_tokens=24"]  # fmt: skip
# The server the tool starts, with a small continuous-batching cache: sized by default, its first
# request takes 18 s on a CPU.
SMALL_CACHE = 'serving.server_args=["--cb-num-blocks","64","--cb-max-batch-tokens","256"]'
# A Ray cluster on loopback only: Ray turns 127.0.0.1 into the host's outward address unless
# told the cluster is one machine; `ray start` turns token authentication on, which a driver
# uses only when asked. The token is this test session's own (RAY_AUTH_TOKEN), never one left
# in ~/.ray/auth_token by an earlier run on this machine.
RAY_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_AUTH_TOKEN": secrets.token_hex(32)}  # fmt: skip


# The exit codes the CLI documents (mlflow_energy/commands/exits.py), as a user's script sees them.
EXIT_RUN_FAILED, EXIT_CONFIG_ERROR, EXIT_TRACKING_ERROR, EXIT_INTERRUPTED = 1, 2, 3, 130


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without an inherited tracking store (``MLFLOW_*``), terminal
    settings (what a command prints must not depend on them) or torch.compile's cache folder
    (torch sets ``TORCHINDUCTOR_CACHE_DIR`` in the environment of a test process that compiled)."""
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("MLFLOW_", "TORCHINDUCTOR_")) and k not in _TERMINAL}  # fmt: skip
    return inherited | (extra or {})


def run_cli(cwd: Path, *args: str, timeout: float = 600, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], cwd=cwd, env=cli_env(env_extra), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def experiment_runs(folder: Path, experiment: str = "mlflow-energy", tracking_uri: str | None = None) -> list:
    """The runs of ``experiment`` in ``tracking_uri`` (default: ``folder``'s SQLite store); none
    when it does not exist."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri or f"sqlite:///{folder / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def sweep_runs(folder: Path, tracking_uri: str | None = None) -> tuple[Any, list, list]:
    """(a client of ``tracking_uri``, default ``folder``'s SQLite store, the sweep parent runs,
    the child runs)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri or f"sqlite:///{folder / 'mlflow.db'}")
    runs = experiment_runs(folder, tracking_uri=tracking_uri)
    parents = [r for r in runs if r.data.tags.get("mlflow_energy.sweep_parent") == "true"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def result_of(out_dir: Path) -> dict:
    """The result.json a benchmark saved in ``out_dir``, as plain JSON."""
    return json.loads((out_dir / "result.json").read_text())


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 300) -> None:
    """Polls ``condition`` (not a timing assertion: the bound only ends a test that would hang)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


@dataclass
class Launch:
    """One `mlflow-energy` command in a session of its own (one process group, as a terminal
    makes one), its output in files so that it can be read while it runs."""

    proc: subprocess.Popen
    args: list[str]
    stderr_path: Path

    @classmethod
    def start(cls, folder: Path, *args: str, env_extra: dict[str, str] | None = None) -> Launch:
        env = cli_env(env_extra)
        name = f"launch-{time.monotonic_ns()}"
        stdout, stderr = folder / f"{name}.out", folder / f"{name}.err"
        proc = subprocess.Popen([CLI, *args], cwd=folder, env=env, stdout=stdout.open("w"), stderr=stderr.open("w"),
                                start_new_session=True)  # fmt: skip
        return cls(proc, list(args), stderr)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    @property
    def command(self) -> str:
        """The command as the tool prints it for a resume."""
        return f"mlflow-energy {shlex.join(self.args)}"

    def sentences(self) -> list[str]:
        """The tool's own lines on stderr (not the progress log lines)."""
        return [line for line in self.stderr.splitlines() if line.startswith("mlflow-energy: ")]

    def wait(self) -> int:
        return self.proc.wait(timeout=600)

    def interrupt(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def terminate(self) -> None:
        """SIGTERM to the command alone, as `timeout` and `kill` send it."""
        self.proc.send_signal(signal.SIGTERM)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def benchmark_processes(self) -> tuple[psutil.Process, psutil.Process]:
        """(the zygote, the benchmark child it started)."""
        children = live_children(psutil.Process(self.proc.pid))
        zygote = next(p for p in children if "mlflow_energy.bench.zygote" in command_line(p))
        wait_until(zygote.children, "the benchmark child")
        return zygote, zygote.children()[0]

    def end(self) -> None:
        """Ends whatever of this command still runs (a test that failed half way): the command,
        held still or not, with every process of its session."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # ends a command held still (SIGSTOP) too
            except ProcessLookupError:  # it ended meanwhile
                pass
            self.proc.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class TrackingServer:
    """`mlflow server` on 127.0.0.1:``port`` in a process group of its own, its log in
    ``folder``/server.log, its artifacts under ``folder``/artifacts; its backend store
    ``backend_store_uri``, by default a SQLite file in ``folder`` (store.db)."""

    folder: Path
    port: int
    backend_store_uri: str | None = None
    proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_uri(self) -> str:
        return self.backend_store_uri or f"sqlite:///{self.folder / 'store.db'}"

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.uri}/health", timeout=2)
        except OSError:
            return False
        return True

    def start(self, timeout_s: float = 120) -> None:
        """Starts the server and waits until it answers (a new store's schema made first); when
        it ends or does not answer in time, fails with the end of its log, stopped."""
        env = cli_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job workers: a lighter server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--backend-store-uri", self.store_uri,
             "--default-artifact-root", str(self.folder / "artifacts")],
            stdout=(self.folder / "server.log").open("a"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until(lambda: self.proc.poll() is not None or self.answers(), "the tracking server to answer",
                       timeout_s=timeout_s)  # fmt: skip
            assert self.proc.poll() is None, f"the tracking server exited {self.proc.returncode}"
        except AssertionError as failed:
            self.stop()
            with contextlib.suppress(ProcessLookupError):  # what its group left when it ended by itself
                os.killpg(self.proc.pid, signal.SIGKILL)
            log = (self.folder / "server.log").read_text()[-3000:]
            raise AssertionError(f"{failed}; the end of {self.folder / 'server.log'}:\n{log}") from None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        wait_until(lambda: not self.answers(), "the tracking server to stop answering")


def live_children(process: psutil.Process) -> list[psutil.Process]:
    """process's children, or none once it has ended: a helper program may end while it is read."""
    try:
        return process.children()
    except psutil.Error:
        return []


def command_line(process: psutil.Process) -> str:
    """process's command line, or "" once it has ended."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""
