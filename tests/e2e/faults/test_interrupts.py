"""Ctrl-C and a killed benchmark zygote, injected for real: SIGINT to the command's process
group (as a terminal sends it), SIGKILL to the zygote. Each test asserts the end state: the
runs in the store (none RUNNING), the files kept, the one sentence, the exit code, no
benchmark process left, and that the next launch measures nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from processes import (
    EXIT_INTERRUPTED,
    EXIT_RUN_FAILED,
    QUICK_NO_QUALITY,
    Launch,
    experiment_runs,
    result_of,
    wait_until,
)

pytestmark = pytest.mark.e2e

UNTIL_STOPPED = ["bench.min_duration_s=100000", "bench.max_duration_s=100000"]  # a benchmark that never ends by itself


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def phase_started(out_dir: Path, phase: str) -> bool:
    log = out_dir / "bench.log"
    return log.is_file() and phase in log.read_text()


def single_run_folder(folder: Path) -> Path:
    (out_dir,) = folder.glob("outputs/*/*")
    return out_dir


def run_in_a_measured_window(launch: Callable[..., Launch], tmp_path: Path) -> tuple[Launch, Path, psutil.Process,
                                                                                   psutil.Process]:  # fmt: skip
    """A single run started in ``tmp_path``, once it measures: (launch, output folder, zygote, child)."""
    started = launch(tmp_path, "run", *QUICK_NO_QUALITY, *UNTIL_STOPPED)
    wait_until(lambda: list(tmp_path.glob("outputs/*/*/bench.log")), "the benchmark to start")
    out_dir = single_run_folder(tmp_path)
    wait_until(lambda: phase_started(out_dir, "repetition 2"), "a measured window")
    zygote, child = started.benchmark_processes()
    return started, out_dir, zygote, child


@pytest.mark.usefixtures("tracking_uri")
def test_sigterm_stops_a_run_cleanly_and_keeps_what_it_measured(launch, tmp_path: Path) -> None:
    """SIGTERM, as `timeout` and `kill` send it to the command, stops the run as Ctrl-C does
    (test_zygote.py checks that Ctrl-C and SIGTERM are the same stop request)."""
    command, out_dir, zygote, child = run_in_a_measured_window(launch, tmp_path)
    command.terminate()
    assert command.wait() == EXIT_INTERRUPTED
    assert "Traceback" not in command.stderr
    stopping, interrupted = command.sentences()
    assert stopping.endswith("(a second SIGTERM exits at once).")
    (run,) = experiment_runs(tmp_path)
    assert interrupted == (f"mlflow-energy: interrupted: what was measured is kept in {out_dir} and logged as run "
                           f"{run.info.run_id}.")  # fmt: skip
    assert run.info.status == "FAILED"
    assert "interrupted (SIGTERM) during repetition" in run.data.tags["mlflow_energy.error"]
    result = result_of(out_dir)
    assert result["status"] == "failed" and len(result["repetitions"]) >= 1  # the partial result, on disk
    assert running([zygote, child]) == []


@pytest.mark.usefixtures("tracking_uri")
def test_a_second_ctrl_c_exits_at_once(launch, tmp_path: Path) -> None:
    """The first Ctrl-C cannot finish here (the benchmark is frozen, so it cannot save and exit):
    the second one ends the command at once, and the benchmark goes with it."""
    command, out_dir, zygote, child = run_in_a_measured_window(launch, tmp_path)
    child.suspend()
    command.interrupt()
    wait_until(lambda: "Ctrl-C again" in command.stderr, "the first Ctrl-C to be acknowledged")
    command.interrupt()
    assert command.wait() == EXIT_INTERRUPTED
    assert command.sentences()[-1].startswith("mlflow-energy: second Ctrl-C: exiting now")
    assert "Traceback" not in command.stderr
    child.resume()  # it received SIGTERM when the zygote died, as a frozen process it could not act on it
    psutil.wait_procs([zygote, child], timeout=60)
    assert running([zygote, child]) == []
    assert result_of(out_dir)["status"] == "failed"  # what was measured stays for `mlflow-energy log`
    assert experiment_runs(tmp_path) == []  # no run was created, so none is left RUNNING


@pytest.mark.usefixtures("tracking_uri")
def test_ctrl_c_in_a_sweep_closes_it_and_the_relaunch_measures_nothing_twice(launch, tmp_path: Path) -> None:
    """Ctrl-C arrives while point 2's benchmark has just finished on disk (the command is held
    still meanwhile): that result is logged, not lost, point 3 does not start, the parent is
    closed KILLED with the report; the relaunch measures point 3 only."""
    args = ["run", "-m", *QUICK_NO_QUALITY, "workload.batch_size=1,2,3"]
    first = launch(tmp_path, *args)
    wait_until(lambda: list(tmp_path.glob("multirun/*/*/1/bench.log")), "point 2 to start")
    (sweep_dir,) = tmp_path.glob("multirun/*/*")
    first.pause()
    point2 = sweep_dir / "1"
    wait_until(lambda: (point2 / "result.json").is_file() and result_of(point2)["status"] == "finished",
               "point 2 to finish on disk")  # fmt: skip
    first.interrupt()  # delivered when the command goes on
    first.resume()
    assert first.wait() == EXIT_INTERRUPTED
    assert "Traceback" not in first.stderr
    runs = experiment_runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags.get("mlflow_energy.sweep_parent") == "true"]
    assert first.sentences()[-1] == (
        f"mlflow-energy: interrupted: the sweep stopped after 2 job(s) and its parent run {parent.info.run_id} is "
        f"closed (KILLED) with their report; to resume, run the same command again: {first.command}"
    )
    assert parent.info.status == "KILLED" and parent.data.metrics["sweep/finished"] == 2
    children = {r.info.run_name: r for r in runs if r is not parent}
    assert sorted(children) == ["workload.batch_size=1", "workload.batch_size=2"]
    assert all(r.info.status == "FINISHED" for r in children.values())
    assert children["workload.batch_size=2"].data.tags["mlflow_energy.result_id"] == result_of(point2)["result_id"]
    assert not (sweep_dir / "2" / "result.json").exists()  # point 3 never started

    second = launch(tmp_path, *args)
    assert second.wait() == 0, second.stderr[-3000:]
    runs = experiment_runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags.get("mlflow_energy.sweep_parent") == "true"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/skipped"] == 2
    by_hash: dict[str, list] = {}
    for run in runs:
        if run is not parent:
            by_hash.setdefault(run.data.tags["mlflow_energy.config_hash"], []).append(run.info.status)
    assert sorted(by_hash.values()) == [["FINISHED"]] * 3
    measured = [p.parent.name for p in tmp_path.glob("multirun/*/*/*/result.json") if p.parent.parent != sweep_dir]
    assert measured == ["2"]  # the relaunch measured point 3 only


@pytest.mark.usefixtures("tracking_uri")
def test_a_killed_zygote_takes_its_benchmark_with_it_and_the_result_is_logged_once(launch, tmp_path: Path) -> None:
    # A single run's benchmark is the standby process; forked and spawned children die with their
    # zygote in test_zygote.py.
    command, out_dir, zygote, child = run_in_a_measured_window(launch, tmp_path)
    zygote.kill()
    assert command.wait() == EXIT_RUN_FAILED
    assert running([child]) == []  # gone before the command logged its result, so nothing rewrites it
    assert "Traceback" not in command.stderr
    (run,) = experiment_runs(tmp_path)
    assert run.info.status == "FAILED"
    assert "zygote process died during repetition" in run.data.tags["mlflow_energy.error"]
    assert result_of(out_dir)["status"] == "failed"
    relog = launch(tmp_path, "log", str(out_dir))
    assert relog.wait() == EXIT_RUN_FAILED  # the result failed; it is not logged a second time
    assert [r.info.run_id for r in experiment_runs(tmp_path)] == [run.info.run_id]
