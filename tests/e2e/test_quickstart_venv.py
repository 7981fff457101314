"""What a user of the quick start gets: in the venv the README's first command makes (`.venv` at
the repository's root, only what running needs), a user's `mlflow.autolog()` after importing
transformers, and `mlflow_energy.track()` around a generate call, work and log."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from processes import REPO, cli_env

pytestmark = pytest.mark.e2e

QUICK_START = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e . && mlflow-energy run"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

# Imports transformers first: after it, `mlflow.autolog()` hung in a venv that had boto3.
USER_SCRIPT = textwrap.dedent("""
    import transformers
    import mlflow
    import mlflow_energy

    mlflow.autolog()
    path = mlflow_energy.shipped_model_path("tiny-stories")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    inputs = tokenizer(["Once upon a time"], return_tensors="pt")
    with mlflow.start_run() as run, mlflow_energy.track(tokens=16):
        model.generate(**inputs, max_new_tokens=16, min_new_tokens=16, do_sample=False)
    print(run.info.run_id)
""")


def quick_start_python() -> Path:
    """The quick start's venv, or a skip that says how to make it."""
    if not VENV_PYTHON.is_file():
        pytest.skip(f"no quick-start venv at {VENV_PYTHON.parent.parent}; make it with the README's first command "
                    f"from the repository's root: {QUICK_START}")  # fmt: skip
    extras = subprocess.run([str(VENV_PYTHON), "-c", "import importlib.util as u; print(bool(u.find_spec('ray')))"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    if extras == "True":
        pytest.skip(f"{VENV_PYTHON.parent.parent} has the cluster extras, so it is not the quick start's venv; "
                    f"make a new one with: {QUICK_START}")  # fmt: skip
    return VENV_PYTHON


def test_autolog_and_track_work_in_the_quick_start_venv(tmp_path: Path) -> None:
    python = quick_start_python()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    try:
        proc = subprocess.run([str(python), str(script)], cwd=tmp_path, env=cli_env({"MLFLOW_TRACKING_URI": uri}),
                              capture_output=True, text=True, timeout=300)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("mlflow.autolog() or track() hung in the quick start's venv (MLflow's autolog deadlock?)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = MlflowClient(tracking_uri=uri).get_run(proc.stdout.split()[-1])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["energy/j_per_token"] == pytest.approx(metrics["energy/total_j"] / 16)
