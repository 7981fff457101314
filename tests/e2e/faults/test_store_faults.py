"""Faults around the tracking store and saved results, injected for real: concurrent first
runs on a new SQLite store, logging twice, a logging attempt that breaks half way, damaged
result files. Each asserts the end state: runs in the store, none RUNNING, files kept, one
sentence, the exit code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from processes import CLI, QUICK_NO_QUALITY, cli_env, experiment_runs

pytestmark = pytest.mark.e2e


def cli(cwd: Path, *args: str) -> subprocess.Popen:
    """Started, not waited for: several may run at once."""
    return subprocess.Popen([CLI, *args], cwd=cwd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def assert_one_sentence(stderr: str, fragment: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("mlflow-energy: error: ") and fragment in lines[0], stderr


@pytest.fixture(scope="module")
def concurrent_first_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three `mlflow-energy run` started at once in an empty folder: they all create the store."""
    folder = tmp_path_factory.mktemp("concurrent")
    procs = [cli(folder, "run", *QUICK_NO_QUALITY) for _ in range(3)]
    for code, _, err in map(finish, procs):
        assert code == 0, err[-2000:]
    return folder


def test_concurrent_first_runs_share_a_new_store(concurrent_first_runs: Path) -> None:
    runs = experiment_runs(concurrent_first_runs)
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["mlflow_energy.result_id"] for r in runs}) == 3
    # The store still works for the next run.
    assert finish(cli(concurrent_first_runs, "run", *QUICK_NO_QUALITY))[0] == 0
    assert len(experiment_runs(concurrent_first_runs)) == 4


def test_logging_a_result_twice_keeps_one_run(concurrent_first_runs: Path) -> None:
    out_dir = next(concurrent_first_runs.glob("outputs/*/*"))
    before = {r.info.run_id for r in experiment_runs(concurrent_first_runs)}
    code, out, err = finish(cli(concurrent_first_runs, "log", str(out_dir)))
    assert code == 0, err
    assert "it was already there, nothing was logged again" in out
    assert {r.info.run_id for r in experiment_runs(concurrent_first_runs)} == before


def test_relog_keeps_name_and_sweep_membership(concurrent_first_runs: Path, tmp_path: Path) -> None:
    """A sweep job's folder records how it was to be logged; `log` after a failed attempt
    (here: the run deleted from the store) logs it with the same name, parent and sweep id."""
    out_dir = next(concurrent_first_runs.glob("outputs/*/*"))
    request = json.loads((out_dir / "logging.json").read_text())
    result_id = json.loads((out_dir / "result.json").read_text())["result_id"]
    folder = tmp_path / "store"
    folder.mkdir()
    request |= {"tracking_uri": f"sqlite:///{folder / 'mlflow.db'}", "run_name": "workload.batch_size=4 #2/3",
                "tags": {"mlflow_energy.sweep_id": "abc123", "mlflow.parentRunId": "0" * 32}}  # fmt: skip
    (out_dir / "logging.json").write_text(json.dumps(request))
    code, _, err = finish(cli(tmp_path, "log", str(out_dir)))
    assert code == 0, err
    (run,) = experiment_runs(folder)
    assert run.info.run_name == "workload.batch_size=4 #2/3" and run.info.status == "FINISHED"
    assert run.data.tags["mlflow_energy.sweep_id"] == "abc123" and run.data.tags["mlflow.parentRunId"] == "0" * 32
    assert run.data.tags["mlflow_energy.result_id"] == result_id


def test_a_logging_attempt_that_breaks_leaves_no_running_run(concurrent_first_runs: Path, tmp_path: Path) -> None:
    """The experiment's artifact folder cannot be created (a file stands where it should be):
    the run created for the attempt is removed, the result stays on disk, and logging it
    elsewhere afterwards works."""
    out_dir = next(concurrent_first_runs.glob("outputs/*/*"))
    request = (out_dir / "logging.json").read_text()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "blocker").write_text("a file, not a folder")
    blocked = (tmp_path / "blocker" / "art").as_uri()
    MlflowClient(tracking_uri=store).create_experiment("blocked", artifact_location=blocked)
    code, _, err = finish(cli(tmp_path, "log", str(out_dir), "--tracking-uri", store, "--experiment", "blocked"))
    assert code == 3 and "log it later with: mlflow-energy log" in err and "Traceback" not in err
    assert experiment_runs(tmp_path, "blocked") == []  # nothing RUNNING, nothing half-logged
    assert (out_dir / "result.json").is_file()
    code, _, err = finish(cli(tmp_path, "log", str(out_dir), "--tracking-uri", store, "--experiment", "open"))
    assert code == 0, err
    assert [r.info.status for r in experiment_runs(tmp_path, "open")] == ["FINISHED"]
    assert (out_dir / "logging.json").read_text() == request  # logging elsewhere keeps the first request


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "holds no result.json"),
        ("{", "cannot be read as JSON"),
        ("{}", "is not an mlflow-energy result"),
        ('{"config": 3, "config_hash": "x"}', "is not an mlflow-energy result"),
    ],
)
def test_damaged_result_files_give_one_sentence(tmp_path: Path, content: str | None, fragment: str) -> None:
    if content is not None:
        (tmp_path / "result.json").write_text(content)
    code, _, err = finish(cli(tmp_path, "log", str(tmp_path)))
    assert code == 2
    assert_one_sentence(err, fragment)
    assert not (tmp_path / "mlflow.db").exists()


def test_credentials_in_the_tracking_uri_are_never_printed(tmp_path: Path) -> None:
    code, out, err = finish(cli(tmp_path, "run", *QUICK_NO_QUALITY, "tracking.uri=http://alice:s3cret@127.0.0.1:9"))
    assert code == 2
    assert_one_sentence(err, "http://***@127.0.0.1:9")
    assert "s3cret" not in out + err


def test_the_health_probe_drops_credentials_and_keeps_the_path() -> None:
    """urllib would take ``alice:s3cret@host`` for a host name and declare a live server dead."""
    from mlflow_energy.store.reads import _health_url

    assert _health_url("http://alice:s3cret@127.0.0.1:5000/mlflow/") == "http://127.0.0.1:5000/mlflow/health"
    assert _health_url("https://[::1]:8443") == "https://[::1]:8443/health"
