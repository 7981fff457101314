"""A tracking server that stops during a sweep, injected for real: a real `mlflow server` (SQLite
backend) stopped after a point and started again later, the sweeping command held still
(SIGSTOP) while the server changes state. Asserts each launch's end state, and that launching
the same command again logs the results kept on disk, measures nothing twice and logs nothing
twice."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from processes import EXIT_TRACKING_ERROR, QUICK_NO_QUALITY, Launch, TrackingServer, result_of, wait_until

pytestmark = pytest.mark.e2e


def new_sweep_folder(folder: Path, known: set[Path]) -> Path:
    def fresh() -> list[Path]:
        return [d for d in folder.glob("multirun/*/*") if d not in known and (d / "mlflow_energy_sweep.json").is_file()]

    wait_until(fresh, "the sweep to start")
    (sweep_dir,) = fresh()
    return sweep_dir


def outcome(sweep_dir: Path, job: int) -> dict | None:
    path = sweep_dir / str(job) / "mlflow_energy_outcome.json"
    return json.loads(path.read_text()) if path.is_file() else None


def while_held(command: Launch, action: Callable[[], None]) -> None:
    """``action`` while the command is held still, so the state it changes is the one its next
    step meets."""
    command.pause()
    try:
        action()
    finally:
        command.resume()


def test_a_tracking_outage_loses_nothing_and_the_same_command_recovers_everything(
    server: TrackingServer, launch, tmp_path: Path
) -> None:
    args = ["run", "-m", *QUICK_NO_QUALITY, "workload.batch_size=1,2,3", "tracking.wait_s=1",
            f"tracking.uri={server.uri}"]  # fmt: skip
    client = MlflowClient(tracking_uri=server.uri)

    # 1. The server stops once point 1 is logged and is back once point 2 has given up.
    first = launch(tmp_path, *args)
    sweep_dir = new_sweep_folder(tmp_path, set())
    wait_until(lambda: outcome(sweep_dir, 0), "point 1 to end")
    while_held(first, server.stop)
    wait_until(lambda: outcome(sweep_dir, 1), "point 2 to end")
    while_held(first, server.start)
    assert first.wait() == EXIT_TRACKING_ERROR, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    ends = [outcome(sweep_dir, job) for job in range(3)]
    assert ends[0]["status"] == "finished"
    assert ends[1]["status"] == "not_logged" and ends[1]["result_dir"] == str(sweep_dir / "1")
    assert result_of(sweep_dir / "1")["status"] == "finished"  # measured, kept on disk
    assert ends[2]["status"] in ("finished", "not_logged")  # logged when the server was back in time
    kept = sum(e["status"] == "not_logged" for e in ends)
    experiment_id = client.get_experiment_by_name("mlflow-energy").experiment_id
    parent = next(r for r in client.search_runs([experiment_id]) if r.data.tags.get("mlflow_energy.sweep_parent"))
    parent_id = parent.info.run_id
    assert first.sentences()[-1] == (
        f"mlflow-energy: error: {kept} result(s) could not be logged and wait on disk (the sweep's parent run "
        f"{parent_id} is FAILED); once the tracking server answers, run the same command again: {first.command}"
    )
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["sweep/not_logged"] == kept and parent.data.metrics["sweep/finished"] == 3 - kept
    summary = Path(client.download_artifacts(parent_id, "summary.csv", str(tmp_path)))
    rows = {row["point"]: row for row in csv.DictReader(summary.open())}
    assert len(rows) == 3 and rows["workload.batch_size=2"]["status"] == "not_logged"
    assert float(rows["workload.batch_size=2"]["energy/j_per_token"]) > 0  # its figures, from disk
    assert [r for r in client.search_runs([experiment_id]) if r.info.status == "RUNNING"] == []
    sweep_id = parent.data.tags["mlflow_energy.sweep_id"]
    assert (tmp_path / ".mlflow_energy" / "kept" / sweep_id).is_dir()

    # 2. The same command; the server stops as soon as the sweep has begun and stays down.
    second = launch(tmp_path, *args)
    second_dir = new_sweep_folder(tmp_path, {sweep_dir})
    while_held(second, server.stop)
    assert second.wait() == EXIT_TRACKING_ERROR, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    last = second.sentences()[-1]
    assert last.startswith(f"mlflow-energy: error: the tracking server at {server.uri} does not answer, so the "
                           f"sweep's parent run {parent_id} stays open")  # fmt: skip
    assert last.endswith(f"once it answers, run the same command again: {second.command}")
    assert not list(second_dir.glob("*/result.json"))  # nothing measured again

    # 3. The server is back: the same command logs what waited, measures nothing, closes the sweep.
    server.start()
    third = launch(tmp_path, *args)
    third_dir = new_sweep_folder(tmp_path, {sweep_dir, second_dir})
    assert third.wait() == 0, third.stderr[-3000:]
    assert not list(third_dir.glob("*/result.json"))
    runs = client.search_runs([experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("mlflow_energy.sweep_parent")]
    assert parent.info.run_id == parent_id and parent.info.status == "FINISHED"
    assert parent.data.metrics["sweep/not_logged"] == 0
    children = [r for r in runs if r is not parent]
    by_hash: dict[str, list[str]] = {}
    for child in children:
        by_hash.setdefault(child.data.tags["mlflow_energy.config_hash"], []).append(child.info.status)
    assert sorted(by_hash.values()) == [["FINISHED"]] * 3  # one run per configuration
    point2 = next(r for r in children if r.info.run_name == "workload.batch_size=2")
    assert point2.data.tags["mlflow.parentRunId"] == parent_id
    assert point2.data.tags["mlflow_energy.sweep_id"] == sweep_id
    assert point2.data.tags["mlflow_energy.result_id"] == result_of(sweep_dir / "1")["result_id"]  # the kept result
