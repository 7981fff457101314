"""Hydra multirun sweeps end to end: parent and children (on a Ray cluster logging to a tracking
server on PostgreSQL, or in SQLite), resume, failures, joblib."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlflow_energy.sweep.state import SweepState

from processes import QUICK, QUICK_NO_QUALITY, RAY_LOOPBACK, run_cli, sweep_runs

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class ClusterSweep:
    folder: Path
    tracking_uri: str
    engine: list[str]  # the overrides that launch on the Ray cluster and log to the server

    def run(self, *overrides: str):
        return run_cli(self.folder, "run", "-m", *self.engine, *QUICK_NO_QUALITY, *overrides, env_extra=RAY_LOOPBACK)

    def runs(self):
        return sweep_runs(self.folder, self.tracking_uri)


@pytest.fixture(scope="module")
def four_point_sweep(tmp_path_factory: pytest.TempPathFactory, ray_cluster: str, postgres_tracking_server):
    """Four points as a team runs them at scale: jobs on a Ray cluster (one local node here),
    results in a shared `mlflow server` on PostgreSQL."""
    uri = postgres_tracking_server.uri
    engine = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={ray_cluster}", f"tracking.uri={uri}"]
    sweep = ClusterSweep(tmp_path_factory.mktemp("sweep"), uri, engine)
    proc = sweep.run("model.dtype=float32,bfloat16", "workload.batch_size=1,4")
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return sweep, proc


@pytest.mark.cluster
def test_sweep_is_one_parent_with_a_child_per_point(four_point_sweep, tmp_path: Path) -> None:
    sweep, proc = four_point_sweep
    folder = sweep.folder
    client, parents, children = sweep.runs()
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    sweep_id = parent.data.tags["mlflow_energy.sweep_id"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["model.dtype"] == "float32,bfloat16"
    # The parent's params are named as the children's: the config keys, each swept one with its values.
    learnt = {"scenario", "resolved_device", "model.parameters", "sweep.replicate"}  # what each run finds out
    assert set(children[0].data.params) - learnt == set(parent.data.params)
    assert parent.data.params["model.name"] == children[0].data.params["model.name"]
    assert parent.data.params["workload.batch_size"] == "1,4"
    assert parent.data.metrics["sweep/finished"] == 4 and parent.data.metrics["sweep/failed"] == 0
    names = set()
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["mlflow_energy.sweep_id"] == sweep_id
        assert child.data.metrics["energy/j_per_token"] > 0 and child.data.metrics["throughput/tokens_per_s"] > 0
        assert {"model.dtype", "workload.batch_size"} <= set(child.data.params)  # everything swept is a param
        names.add(child.info.run_name)
    assert "model.dtype=float32,workload.batch_size=4" in names
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.csv", "summary.html", "pareto.png", "sweep_points.json"} <= artifacts

    summary = Path(client.download_artifacts(parent.info.run_id, "summary.csv", str(tmp_path)))
    rows = list(csv.DictReader(summary.open()))
    assert len(rows) == 4 and any(r["pareto"] == "True" for r in rows)
    by_run = {c.info.run_id: c for c in children}
    for row in rows:
        assert row["replicates"] == "1" and row["interval"] in ("one run's windows", "")
        measured = by_run[row["run_ids"]].data.metrics["energy/j_per_token"]
        assert float(row["energy/j_per_token"]) == pytest.approx(measured)
    best = parent.data.tags["mlflow_energy.best.energy/j_per_token"]
    cheapest = min(children, key=lambda c: c.data.metrics["energy/j_per_token"])
    assert f"{cheapest.info.run_name}: " in best  # after "N points cannot be told apart; best value" if tied
    html = Path(client.download_artifacts(parent.info.run_id, "summary.html", str(tmp_path))).read_text()
    assert cheapest.info.run_name in html and "<script>" in html
    assert f"/runs/{cheapest.info.run_id}" in parent.data.tags["mlflow.note.content"]  # links that work in the UI

    log = next(folder.glob("multirun/*/*/sweep.log")).read_text()
    assert "point 1 of 4" in log and "point 4 of 4" in log and "elapsed" in log
    assert "sweep" in proc.stdout and "Pareto" in proc.stdout
    # Each job ran as a Ray task named after its point, and the store is the server's.
    assert "(model.dtype=bfloat16,workload.batch_size=4 pid=" in proc.stdout + proc.stderr
    assert not (folder / "mlflow.db").exists()


@pytest.mark.cluster
def test_sweep_again_skips_what_is_done_and_report_rebuilds(four_point_sweep) -> None:
    sweep, _ = four_point_sweep
    folder = sweep.folder
    proc = sweep.run("model.dtype=float32,bfloat16", "workload.batch_size=1,4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, parents, children = sweep.runs()
    assert len(parents) == 1 and len(children) == 4  # no new child run, the same parent
    assert "4 skipped" in proc.stdout
    assert parents[0].data.metrics["sweep/skipped"] == 4

    report = run_cli(folder, "report", "--experiment", "mlflow-energy", "--tracking-uri", sweep.tracking_uri,
                     "--out", str(folder / "rebuilt"))  # fmt: skip
    assert report.returncode == 0, report.stderr[-2000:]
    assert len(list(csv.DictReader((folder / "rebuilt" / "summary.csv").open()))) == 4
    assert (folder / "rebuilt" / "pareto.png").stat().st_size > 1000
    missing = run_cli(folder, "report", "--experiment", "mlflow-energy", "--tracking-uri", sweep.tracking_uri,
                      "--sweep", "nope")  # fmt: skip
    assert missing.returncode == 2 and "no parent run of sweep 'nope'" in missing.stderr


@pytest.mark.cluster
def test_a_new_grid_that_reuses_points_lists_and_links_them_all(four_point_sweep) -> None:
    """The reused runs stay under the first sweep's parent (MLflow nests a run under one parent),
    so the new parent's answer links them and its comparison view names them."""
    from mlflow_energy.record.ui_view import VIEW_TAG_PREFIX, read_view_tag

    sweep, _ = four_point_sweep
    proc = sweep.run("model.dtype=float32", "workload.batch_size=1,4,2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, children = sweep.runs()
    newest = max(parents, key=lambda r: r.info.start_time)
    reused = [c for c in children if c.info.run_name in ("model.dtype=float32,workload.batch_size=1",
                                                         "model.dtype=float32,workload.batch_size=4")]
    assert len(parents) == 2 and len(reused) == 2 and newest.data.metrics["sweep/skipped"] == 2
    answer = newest.data.tags["mlflow.note.content"]
    assert "#### Every point (3)" in answer and answer.count("reused from an earlier launch") == 2
    assert all(f"(#/experiments/{c.info.experiment_id}/runs/{c.info.run_id})" in answer for c in reused)
    experiment = client.get_experiment(newest.info.experiment_id)
    key = VIEW_TAG_PREFIX + "mlflow-energy-" + newest.data.tags["mlflow_energy.sweep_id"]
    shown = read_view_tag(experiment.tags[key])["searchFilter"]
    assert all(c.info.run_id in shown for c in reused) and newest.info.run_id not in shown
    # The experiment's description points at the newest sweep.
    assert f"runs/{newest.info.run_id})" in experiment.tags["mlflow.note.content"]


@pytest.mark.usefixtures("tracking_uri")
def test_a_bad_point_fails_alone_and_the_exit_code_says_so(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "-m", *QUICK_NO_QUALITY, "model.weights=random",
                   "model.name=tiny,nobody/no-such-model")  # fmt: skip
    assert proc.returncode == 1
    assert "1 job(s) of the sweep failed" in proc.stderr
    client, parents, children = sweep_runs(tmp_path)
    status = {c.info.run_name: c for c in children}
    assert status["model.name=tiny"].info.status == "FINISHED"
    bad = status["model.name=nobody/no-such-model"]
    assert bad.info.status == "FAILED" and "is not a shipped model" in bad.data.tags["mlflow_energy.error"]
    assert {a.path for a in client.list_artifacts(bad.info.run_id)} >= {"error.txt"}
    assert parents[0].data.metrics["sweep/failed"] == 1 and parents[0].data.metrics["sweep/finished"] == 1
    # Hydra's basic launcher: the jobs run in this process one after another, so a job may start
    # the next one's benchmark processes while it logs.
    assert SweepState.read(next(tmp_path.glob("multirun/*/*"))).one_process is True


@pytest.mark.usefixtures("tracking_uri")
def test_two_parallel_joblib_jobs_share_one_sqlite_store_and_replicate(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *QUICK_NO_QUALITY,
                   "workload.batch_size=1,2", "sweep.replicates=3")  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "database is locked" not in output and "OperationalError" not in output
    assert "disturb each other" in output  # two jobs on one CPU: the tool warns
    assert SweepState.read(next(tmp_path.glob("multirun/*/*"))).one_process is False  # jobs side by side
    client, parents, children = sweep_runs(tmp_path)
    assert len(parents) == 1 and len(children) == 6  # 2 points x 3 replicates (an interval needs 3)
    assert all(c.info.status == "FINISHED" for c in children)
    assert {c.info.run_name for c in children} == {f"workload.batch_size={b} #{k}/3" for b in (1, 2) for k in (1, 2, 3)}
    assert len({c.data.tags["mlflow_energy.point_hash"] for c in children}) == 2
    parent = parents[0]
    assert parent.data.params["sweep.replicates"] == "3" and parent.data.metrics["sweep/finished"] == 6
    summary = Path(client.download_artifacts(parent.info.run_id, "summary.csv", str(tmp_path)))
    rows = list(csv.DictReader(summary.open()))
    assert sorted(r["point"] for r in rows) == ["workload.batch_size=1", "workload.batch_size=2"]
    assert all(r["replicates"] == "3" and r["interval"] == "3 replicates" for r in rows)
    for row in rows:
        replicates = [c.data.metrics["energy/j_per_token"] for c in children if c.info.run_id in row["run_ids"].split()]
        assert float(row["energy/j_per_token"]) == pytest.approx(sum(replicates) / 3)
        assert float(row["energy/j_per_token_ci95_low"]) <= float(row["energy/j_per_token"])
    # The answer quotes the interval across the replicates, and links each replicate's run.
    answer = parent.data.tags["mlflow.note.content"]
    assert "J/token (95% interval over 3 replicates).**" in answer
    assert all(f"(#/experiments/{c.info.experiment_id}/runs/{c.info.run_id})" in answer for c in children)


def test_an_unreachable_tracking_server_stops_the_sweep_before_any_job(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "-m", *QUICK, "workload.batch_size=1,2", "tracking.uri=http://127.0.0.1:9")
    assert proc.returncode == 2 and "does not answer" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("multirun/*/*/*/result.json"))
