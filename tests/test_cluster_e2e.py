"""A sweep through a real single-node SLURM cluster (slurmctld, slurmd, slurmdbd and munged
started here on 127.0.0.1) with Hydra's submitit launcher: a job cancelled with `scancel` mid-run
becomes a FAILED child with its cause, and launching again measures it. And the refusal of a
cluster sweep that has no shared tracking server. (The Ray sweep on a tracking server backed by
PostgreSQL is tests/test_sweep_e2e.py's four-point sweep.)"""

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

# Each point measures for 3 s: long enough to cancel one mid-run.
SLOW_POINTS = ["bench=quick", "bench.idle_s=0.2", "bench.min_repetitions=2", "bench.min_duration_s=3",
               "bench.max_duration_s=3", "quality=off", "workload.batch_size=1,2"]  # fmt: skip


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


def test_a_job_cancelled_on_slurm_becomes_a_failed_child_and_the_next_launch_measures_it(
    slurm, server: TrackingServer, tmp_path: Path
) -> None:
    args = ["run", "-m", "hydra/launcher=submitit_slurm", f"hydra.launcher.partition={slurm.partition}",
            "hydra.launcher.timeout_min=10", f"tracking.uri={server.uri}", *SLOW_POINTS]  # fmt: skip
    sweep = Launch.start(tmp_path, *args, env_extra=slurm.env)
    try:
        # The second point's job, named after it, once its benchmark has saved its first phase.
        def measuring() -> bool:
            saved = any(tmp_path.glob("multirun/*/*/1/result.json"))
            return saved and "workload.batch_size=2" in slurm.squeue().values()

        wait_until(measuring, "the second point to be measuring")
        (job_id,) = [i for i, name in slurm.squeue().items() if name == "workload.batch_size=2"]
        slurm.scancel(job_id)
        assert sweep.wait() == EXIT_RUN_FAILED, sweep.stderr[-3000:]
    finally:
        sweep.end()
    assert "mlflow-energy: error: 1 job(s) of the sweep failed; their runs hold the errors." in sweep.sentences()
    _, parents, children = sweep_runs(tmp_path, server.uri)
    by_name = {c.info.run_name: c for c in children}
    assert by_name["workload.batch_size=1"].info.status == "FINISHED"
    cancelled = by_name["workload.batch_size=2"]
    assert cancelled.info.status == "FAILED"
    assert f"job {job_id}" in cancelled.data.tags["mlflow_energy.job_lost"]
    assert "CANCELLED" in cancelled.data.tags["mlflow_energy.job_lost"]
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["sweep/failed"] == 1 and parents[0].data.metrics["sweep/finished"] == 1

    again = run_cli(tmp_path, *args, env_extra=slurm.env)
    assert again.returncode == 0, again.stderr[-3000:]
    _, parents, children = sweep_runs(tmp_path, server.uri)
    assert len(parents) == 1 and parents[0].data.metrics["sweep/skipped"] == 1
    measured = [c for c in children if c.info.run_name == "workload.batch_size=2"]
    assert sorted(c.info.status for c in measured) == ["FAILED", "FINISHED"]
    assert not slurm.squeue()  # every job ended


def test_a_cluster_sweep_without_a_tracking_server_is_refused_before_any_job(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "-m", "hydra/launcher=submitit_slurm", "workload.batch_size=1,2")
    assert proc.returncode == EXIT_CONFIG_ERROR and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "mlflow-energy: error: hydra/launcher=submitit_slurm runs jobs on other machines, which cannot share the "
        "tracking store sqlite:///mlflow.db; start a shared `mlflow server` (docs/cluster.md) and set "
        "tracking.uri=http://HOST:5000."
    )
    assert not (tmp_path / "mlflow.db").exists() and not list(tmp_path.glob("multirun/*/*/.submitit"))


def test_a_job_killed_under_submitit_local_becomes_a_failed_child_holding_what_it_measured(tmp_path: Path) -> None:
    """A job lost at once (SIGKILL, as a node that dies takes its processes) after its benchmark
    saved its first phases: the partial result is the FAILED child, logged once, with the cause."""
    import psutil

    one_point = [*SLOW_POINTS[:-1], "workload.batch_size=2"]
    sweep = Launch.start(tmp_path, "run", "-m", "hydra/launcher=submitit_local", *one_point)
    try:
        wait_until(lambda: any(tmp_path.glob("multirun/*/*/0/result.json")), "the point to be measuring")
        (job,) = [p for p in psutil.process_iter(["cmdline"]) if "submitit.core._submit" in (p.info["cmdline"] or [])
                  and str(tmp_path) in " ".join(p.info["cmdline"])]  # fmt: skip
        job.kill()
        assert sweep.wait() == EXIT_RUN_FAILED, sweep.stderr[-3000:]
    finally:
        sweep.end()
    _, parents, children = sweep_runs(tmp_path)
    assert len(children) == 1 and children[0].info.status == "FAILED"  # logged once
    lost = children[0].data
    assert lost.tags["mlflow_energy.job_lost"].startswith("the local job ") and "it left no result" in lost.tags[
        "mlflow_energy.job_lost"]  # fmt: skip
    assert lost.tags["mlflow_energy.result_id"] and lost.metrics  # what it measured before it was lost
    assert parents[0].data.metrics["sweep/failed"] == 1
