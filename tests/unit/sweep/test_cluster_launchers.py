"""Sweeps on cluster engines, without a cluster: which engine, what each job asks for, and the
shared state a sweep needs before any job starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mlflow_energy.config import ConfigError, RunConfig, SweepConfig, config_hash, validate
from mlflow_energy.sweep import shared_state
from mlflow_energy.sweep.engines import (
    OWN_LAUNCHERS,
    RAY_TARGET,
    SLURM_TARGET,
    SUBMITIT_LOCAL_TARGET,
    Engine,
    engine_of,
    job_name,
    job_request,
    may_leave_this_host,
)
from mlflow_energy.sweep.shared_state import check_shared_state, filesystem_type


def launcher(target: str, address: str | None = None) -> dict:
    return {"_target_": target, "ray": {"init": {"address": address}, "remote": {}}}


@pytest.mark.parametrize(
    ("node", "engine"),
    [
        (launcher(RAY_TARGET), Engine.RAY),
        (launcher(OWN_LAUNCHERS[RAY_TARGET]), Engine.RAY),
        (launcher(SLURM_TARGET), Engine.SLURM),
        (launcher(OWN_LAUNCHERS[SUBMITIT_LOCAL_TARGET]), Engine.SUBMITIT_LOCAL),
        (launcher("hydra._internal.core_plugins.basic_launcher.BasicLauncher"), Engine.BASIC),
        (launcher("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"), Engine.JOBLIB),
    ],
)
def test_the_engine_is_read_off_the_launcher(node: dict, engine: Engine) -> None:
    assert engine_of(OmegaConf.create(node)) == engine


def test_jobs_leave_this_host_on_slurm_and_on_a_ray_cluster_joined_by_address() -> None:
    def leaves(node: dict) -> bool:
        config = OmegaConf.create(node)
        return may_leave_this_host(engine_of(config), config)

    assert leaves(launcher(SLURM_TARGET)) and leaves(launcher(RAY_TARGET, "auto"))
    assert not leaves(launcher(RAY_TARGET)) and not leaves(launcher(SUBMITIT_LOCAL_TARGET))


def test_a_gpu_point_asks_for_one_gpu_and_a_cpu_point_for_none() -> None:
    assert job_request("a", "cpu", None, None, cluster_has_gpus=True).gpus == 0
    assert job_request("a", "cuda", None, None, cluster_has_gpus=False).gpus == 1
    assert job_request("a", "cuda:1", 4, 8, cluster_has_gpus=True) == job_request("a", "cuda", 4, 8, True)
    assert job_request("a", "auto", None, None, cluster_has_gpus=True).gpus == 1
    assert job_request("a", "auto", None, 2, cluster_has_gpus=False).gpus == 0
    assert job_request("a", "auto", None, 2, cluster_has_gpus=False).cpus == 2


def test_job_names_are_run_names_a_scheduler_accepts() -> None:
    assert job_name("model.dtype=float32,workload.batch_size=4 #2/3") == "model.dtype=float32,workload.batch_size=4_2_3"
    assert job_request("+precision=int8 #1/2", "cpu", None, None, False).name == "+precision=int8_1_2"


def test_what_a_job_asks_for_is_checked_and_not_part_of_what_is_measured() -> None:
    with pytest.raises(ConfigError, match=r"sweep.gpus_per_job=-1 must be 0 or more"):
        validate(RunConfig(sweep=SweepConfig(gpus_per_job=-1)))
    with pytest.raises(ConfigError, match=r"sweep.cpus_per_job=0 must be 1 or more"):
        validate(RunConfig(sweep=SweepConfig(cpus_per_job=0)))
    assert config_hash(RunConfig(sweep=SweepConfig(gpus_per_job=2, cpus_per_job=8))) == config_hash(RunConfig())


def test_filesystem_type_is_the_nearest_existing_folders() -> None:
    assert filesystem_type(Path("/proc/self")) == "proc"
    assert filesystem_type(Path("/proc/no/such/folder")) == "proc"


def sweep_config(target: str, uri: str, sweep_dir: Path, address: str | None = None):
    return OmegaConf.create({"tracking": {"uri": uri}, "hydra": {"launcher": launcher(target, address),
                                                                  "sweep": {"dir": str(sweep_dir)}}})  # fmt: skip


def test_a_cluster_sweep_on_a_sqlite_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        check_shared_state(sweep_config(SLURM_TARGET, "sqlite:///mlflow.db", tmp_path), tmp_path)
    assert str(refused.value) == (
        "hydra/launcher=submitit_slurm runs jobs on other machines, which cannot share the tracking store "
        "sqlite:///mlflow.db; start a shared `mlflow server` (docs/how-to/clusters.md) and set tracking.uri=http://HOST:5000."
    )
    check_shared_state(sweep_config(SUBMITIT_LOCAL_TARGET, "sqlite:///mlflow.db", tmp_path), tmp_path)  # one host
    check_shared_state(sweep_config(RAY_TARGET, "sqlite:///mlflow.db", tmp_path), tmp_path)  # Ray on this host


def test_a_cluster_sweep_in_a_local_folder_is_refused_unless_the_cluster_is_this_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = sweep_config(RAY_TARGET, "http://tracking:5000", tmp_path / "multirun", "10.0.0.1:6379")
    monkeypatch.setattr(shared_state, "cluster_is_this_host", lambda engine, launcher: False)
    monkeypatch.setattr(shared_state, "filesystem_type", lambda path: "ext4")
    with pytest.raises(ConfigError) as refused:
        check_shared_state(config, tmp_path)
    assert str(refused.value) == (
        f"hydra/launcher=ray runs jobs on other machines, but hydra.sweep.dir {tmp_path / 'multirun'} is on a local "
        "ext4 filesystem that they cannot read; launch from a folder on a shared filesystem (NFS, Lustre, GPFS...) "
        "and keep hydra.sweep.dir there."
    )
    monkeypatch.setattr(shared_state, "filesystem_type", lambda path: "nfs4")
    check_shared_state(config, tmp_path)
    monkeypatch.setattr(shared_state, "filesystem_type", lambda path: "ext4")
    monkeypatch.setattr(shared_state, "cluster_is_this_host", lambda engine, launcher: True)  # a one-node cluster
    check_shared_state(config, tmp_path)
