"""Serving faults with the real CLI: a server that answers errors, one that fails to start, one
that dies mid-run. Each ends the run FAILED with one sentence that says why, and leaves no
server process behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from mlflow_energy import shipped_model_path

from processes import EXIT_RUN_FAILED, QUICK_SERVING, experiment_runs, result_of, run_cli, wait_until
from stub_server import StubServer, StubState

pytestmark = pytest.mark.e2e

TINY = shipped_model_path("tiny-stories")


@pytest.mark.usefixtures("tracking_uri")
def test_a_server_answering_errors_fails_the_run_quoting_the_first(tmp_path: Path) -> None:
    with StubServer(StubState(fail_every=2)) as url:
        proc = run_cli(tmp_path, "run", *QUICK_SERVING, f"serving.url={url}", "serving.concurrency=1",
                       "workload.prompts=shipped")  # fmt: skip
    assert proc.returncode == EXIT_RUN_FAILED and "Traceback" not in proc.stderr
    (run,) = experiment_runs(tmp_path)
    error = run.data.tags["mlflow_energy.error"]
    assert run.info.status == "FAILED"
    assert "requests failed, more than serving.max_error_share=0.05; the first error: HTTP 500:" in error
    assert "stub failure" in error


@pytest.mark.usefixtures("tracking_uri")
def test_a_server_that_fails_to_start_shows_its_last_log_lines(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for item in TINY.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    proc = run_cli(tmp_path, "run", *QUICK_SERVING, f"model.name={broken}")
    assert proc.returncode == EXIT_RUN_FAILED and "Traceback" not in proc.stderr
    (run,) = experiment_runs(tmp_path)
    error = run.data.tags["mlflow_energy.error"]
    assert run.info.status == "FAILED"
    assert "transformers serve" in error
    assert "exited with code 1 before it answered /health; its last log lines:" in error
    assert "SafetensorError" in error


@pytest.mark.usefixtures("tracking_uri")
def test_a_server_that_dies_mid_run_ends_it_failed_with_what_was_measured(launch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = launch(tmp_path, "run", *QUICK_SERVING, "serving.duration_s=120", f"hydra.run.dir={out}",
                 "serving.continuous_batching=false")  # fmt: skip

    def in_steady_state() -> bool:
        try:
            result = result_of(out)
        except (OSError, ValueError):
            return False
        return result["phase"].startswith("steady-state window 2")

    wait_until(in_steady_state, "the second steady-state window")
    pid = result_of(out)["serving"]["server_pid"]
    os.kill(pid, signal.SIGKILL)
    assert run.wait() == EXIT_RUN_FAILED
    (logged,) = experiment_runs(tmp_path)
    result = result_of(out)
    assert logged.info.status == "FAILED"
    assert "exited with code -9 during steady-state window" in logged.data.tags["mlflow_energy.error"]
    assert len(result["serving"]["windows"]) >= 1 and result["serving"]["requests"]  # what was measured is kept
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
