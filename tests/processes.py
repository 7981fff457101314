"""The real CLI from tests: one command path, one environment, one way to read a run's store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

CLI = str(Path(sys.executable).parent / "mlflow-energy")
_TERMINAL = ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without an inherited tracking store (``MLFLOW_*``) or terminal
    settings: what a command prints must not depend on them."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k not in _TERMINAL}
    return inherited | (extra or {})


def run_cli(cwd: Path, *args: str, timeout: float = 600, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], cwd=cwd, env=cli_env(env_extra), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def experiment_runs(folder: Path, experiment: str = "mlflow-energy") -> list:
    """The runs of ``experiment`` in ``folder``'s SQLite store; none when it does not exist."""
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []
