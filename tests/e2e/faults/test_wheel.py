"""Installed as users install it: the project built as a wheel, installed without -e in a fresh
venv, runs a default run and a small sweep from an empty folder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from processes import QUICK_NO_QUALITY, REPO, cli_env

pytestmark = pytest.mark.e2e
PROJECT = REPO


def sh(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # A user's environment: no tracking URI that another test's mlflow.set_tracking_uri left set.
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
    return proc


def test_the_wheel_runs_from_an_empty_folder(tmp_path: Path) -> None:
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
       PROJECT)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("mlflow_energy-*.whl")
    with zipfile.ZipFile(wheel) as packed:  # the cluster launchers, where Hydra looks for them
        assert {"hydra_plugins/mlflow_energy_sweeper/launchers.py", "mlflow_energy/sweep/ray_jobs.py",
                "mlflow_energy/sweep/submitit_jobs.py"} <= set(packed.namelist())  # fmt: skip
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    # The dependencies come from this environment's site-packages, as a plain path: its .pth
    # files (this checkout's editable install among them) are not processed, so the package
    # can only come from the wheel.
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    sh(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    where = sh(python, "-c", "import mlflow_energy; print(mlflow_energy.__file__)", cwd=tmp_path).stdout.strip()
    assert where.startswith(str(site)), where

    work = tmp_path / "empty"
    work.mkdir()
    cli = venv / "bin" / "mlflow-energy"
    sh(cli, "run", *QUICK_NO_QUALITY, cwd=work)
    sh(cli, "run", "-m", *QUICK_NO_QUALITY, "workload.batch_size=1,2", cwd=work)
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mlflow-energy").experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}  # 1 run, 1 parent, 2 children
