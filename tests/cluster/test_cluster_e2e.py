"""A sweep through a real single-node SLURM cluster (slurmctld, slurmd, slurmdbd and munged
started here on 127.0.0.1) with Hydra's submitit launcher: jobs lost mid-run (cancelled with
`scancel`, or killed) become FAILED children with their causes, and launching again measures
them. And the refusal of a cluster sweep that has no shared tracking server. (The Ray sweep on a
tracking server backed by PostgreSQL is tests/e2e/test_sweep_e2e.py's four-point sweep.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from processes import (
    EXIT_CONFIG_ERROR,
    EXIT_RUN_FAILED,
    Launch,
    TrackingServer,
    run_cli,
    sweep_runs,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

# Each point measures for 10 s, so that both are mid-run together even when one job starts
# seconds after the other on a busy machine (with 3 s, the first had once logged its run before
# the second began measuring). Only the relaunch measures them to the end.
SLOW_POINTS = ["bench=quick", "bench.idle_s=0.2", "bench.min_repetitions=2", "bench.min_duration_s=10",
               "bench.max_duration_s=10", "quality=off", "workload.batch_size=1,2"]  # fmt: skip


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A SLURM cluster of this machine, with accounting (submitit reads job states from sacct:
    without it a cancelled job is never seen to end)."""
    from slurm_cluster import SlurmUnavailable, single_node_slurm

    stack = ExitStack()
    try:
        cluster = stack.enter_context(single_node_slurm(tmp_path_factory.mktemp("slurm"), accounting=True))
    except SlurmUnavailable as exc:
        pytest.skip(f"slurmd cannot run here: {exc}")
    with stack:
        yield cluster


def test_jobs_lost_on_slurm_become_failed_children_and_the_next_launch_measures_them(
    slurm, server: TrackingServer, tmp_path: Path
) -> None:
    """Two points measuring at once: one job cancelled with `scancel` (SLURM signals it; the job
    logs what its benchmark saved), the other killed outright, as a node that dies takes its
    processes (the launching process logs what its benchmark saved)."""
    args = ["run", "-m", "hydra/launcher=submitit_slurm", f"hydra.launcher.partition={slurm.partition}",
            "hydra.launcher.timeout_min=30", f"tracking.uri={server.uri}", *SLOW_POINTS]  # fmt: skip
    sweep = Launch.start(tmp_path, *args, env_extra=slurm.env)
    try:
        def both_measuring() -> bool:  # each job, named after its point, once its benchmark saved its first phase
            saved = len(list(tmp_path.glob("multirun/*/*/[01]/result.json"))) == 2
            return saved and sorted(slurm.squeue().values()) == ["workload.batch_size=1", "workload.batch_size=2"]

        wait_until(both_measuring, "both points to be measuring")
        jobs = {name: job_id for job_id, name in slurm.squeue().items()}
        slurm.scancel(jobs["workload.batch_size=2"])
        job_process(jobs["workload.batch_size=1"]).kill()
        assert sweep.wait() == EXIT_RUN_FAILED, sweep.stderr[-3000:]
    finally:
        sweep.end()
    assert "mlflow-energy: error: 2 job(s) of the sweep failed; their runs hold the errors." in sweep.sentences()
    _, parents, children = sweep_runs(tmp_path, server.uri)
    assert sorted(c.info.run_name for c in children) == ["workload.batch_size=1", "workload.batch_size=2"]  # once each
    lost = {c.info.run_name: c.data for c in children}
    cancelled, killed = lost["workload.batch_size=2"], lost["workload.batch_size=1"]
    assert cancelled.tags["mlflow_energy.job_lost"].startswith(f"the slurm job {jobs['workload.batch_size=2']} ")
    assert "CANCELLED" in cancelled.tags["mlflow_energy.job_lost"]
    assert killed.tags["mlflow_energy.job_lost"].startswith(f"the slurm job {jobs['workload.batch_size=1']} ")
    assert "it left no result" in killed.tags["mlflow_energy.job_lost"]
    for run in (cancelled, killed):  # what each benchmark measured before its job was lost
        assert run.tags["mlflow_energy.status"] == "failed" and run.tags["mlflow_energy.result_id"] and run.metrics
    assert all(c.info.status == "FAILED" for c in children)
    assert parents[0].info.status == "FINISHED" and parents[0].data.metrics["sweep/failed"] == 2

    again = run_cli(tmp_path, *args, env_extra=slurm.env)
    assert again.returncode == 0, again.stderr[-3000:]
    _, parents, children = sweep_runs(tmp_path, server.uri)
    assert len(parents) == 1 and parents[0].data.metrics["sweep/finished"] == 2
    for point in ("workload.batch_size=1", "workload.batch_size=2"):
        assert sorted(c.info.status for c in children if c.info.run_name == point) == ["FAILED", "FINISHED"]
    assert not slurm.squeue()  # every job ended


def job_process(job_id: str):
    """The process running a SLURM job's Python (submitit's), found by the job id in its environment."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        try:
            if "submitit.core._submit" in (process.info["cmdline"] or []) and \
                    process.environ().get("SLURM_JOB_ID") == job_id:  # fmt: skip
                return process
        except psutil.Error:
            continue
    raise AssertionError(f"no process runs SLURM job {job_id}")


def test_a_cluster_sweep_without_a_tracking_server_is_refused_before_any_job(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "-m", "hydra/launcher=submitit_slurm", "workload.batch_size=1,2")
    assert proc.returncode == EXIT_CONFIG_ERROR and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "mlflow-energy: error: hydra/launcher=submitit_slurm runs jobs on other machines, which cannot share the "
        "tracking store sqlite:///mlflow.db; start a shared `mlflow server` (docs/how-to/clusters.md) and set "
        "tracking.uri=http://HOST:5000."
    )
    assert not (tmp_path / "mlflow.db").exists() and not list(tmp_path.glob("multirun/*/*/.submitit"))
