"""The scripts in examples/, run as examples/README.md documents them (with short settings where
they take any), each in a fresh working directory whose default store ``sqlite:///mlflow.db`` is
the test's own (``tracking_uri``: an empty store, its schema made once), and what each promises
read back from that store. The GPU-only ones, where no GPU is visible, refuse in one sentence
before any run exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlflow_energy import shipped_model_path
from mlflow_energy.inference.server import ManagedServer

from processes import EXIT_CONFIG_ERROR, QUICK_NO_QUALITY, REPO, cli_env, experiment_runs, free_port, run_cli

EXAMPLES = REPO / "examples"


def example(cwd: Path, *argv: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``argv`` in ``cwd`` as a user runs it in this environment, activated: its bin folder (the
    `mlflow-energy`, `python` and `python3` the scripts call) first on the PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(list(argv), cwd=cwd, env=cli_env({"PATH": path} | (env_extra or {})), capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def python(cwd: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    return example(cwd, "python", str(EXAMPLES / script), *args)


def succeeded(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]


def all_runs(client: Any) -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.usefixtures("tracking_uri")
def test_best_runs_refuses_an_experiment_that_does_not_exist(tmp_path: Path) -> None:
    proc = python(tmp_path, "best_runs.py", "--experiment", "nope")
    assert proc.returncode == 1
    # Older MLflow versions log the store's creation first; the script's own sentence is the last line.
    assert proc.stderr.splitlines()[-1] == "no experiment named 'nope' in sqlite:///mlflow.db"
    assert "Traceback" not in proc.stderr


@pytest.mark.e2e
@pytest.mark.usefixtures("tracking_uri")
def test_compare_batch_sizes_logs_three_runs_and_ranks_them_by_energy_per_token(tmp_path: Path) -> None:
    proc = example(tmp_path, "bash", str(EXAMPLES / "compare_batch_sizes.sh"), *QUICK_NO_QUALITY)
    succeeded(proc)
    runs = experiment_runs(tmp_path, "batch-example")
    assert {r.info.run_name: r.data.params["workload.batch_size"] for r in runs} == {
        "tiny-bs1": "1", "tiny-bs4": "4", "tiny-bs16": "16"}  # fmt: skip
    assert all(r.info.status == "FINISHED" for r in runs)
    lines = proc.stdout.splitlines()
    header = max(i for i, line in enumerate(lines) if line.startswith("run ") and "J/token" in line)
    rows = [line.split() for line in lines[header + 1 : header + 4]]
    # Lowest J/token first, whichever batch size that is on this machine; each run's batch and sources.
    ranked = sorted(runs, key=lambda r: r.data.metrics["energy/j_per_token"])
    assert [(row[0], row[1], row[-1]) for row in rows] == [
        (r.info.run_name, r.data.params["workload.batch_size"],
         "/".join(r.data.tags[f"mlflow_energy.source.{d}"] for d in ("gpu", "cpu", "ram")))
        for r in ranked
    ]  # fmt: skip
    assert lines[header + 4 :] == ["Compare them in the UI: mlflow ui --backend-store-uri sqlite:///mlflow.db"]


@pytest.mark.e2e
@pytest.mark.usefixtures("tracking_uri")
def test_my_prompts_jsonl_is_the_prompt_file_of_a_run(tmp_path: Path) -> None:
    prompts = EXAMPLES / "my_prompts.jsonl"
    succeeded(run_cli(tmp_path, "run", f"workload.prompts={prompts}", *QUICK_NO_QUALITY))
    (run,) = experiment_runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.params["workload.prompts"] == str(prompts)
    assert run.data.metrics["measurement/generated_tokens"] > 0


@pytest.mark.e2e
@pytest.mark.usefixtures("tracking_uri")
def test_track_own_loop_logs_the_prefill_and_decode_windows(tmp_path: Path) -> None:
    proc = python(tmp_path, "track_own_loop.py", "--device", "cpu", "--new-tokens", "8")
    succeeded(proc)
    (run,) = experiment_runs(tmp_path, "my-own-loop")
    m = run.data.metrics
    assert run.info.status == "FINISHED"
    assert m["measurement/generated_tokens"] == 3 * 8 and m["measurement/requests"] == 3  # three prompts
    assert m["window/prefill/count"] == 3 and m["window/decode/count"] == 3
    # Logged (>= 0): how much energy a block this short shows depends on the machine.
    assert m["energy/j_per_token"] >= 0 and m["energy/j_per_request"] >= 0
    assert proc.stdout.startswith(f"run {run.info.run_id}: 24 tokens, ")


@pytest.mark.e2e
def test_track_openai_client_measures_requests_to_a_real_transformers_serve(
    tiny_server: ManagedServer, client: Any, tmp_path: Path
) -> None:
    answered = tiny_server.log_path.read_text().count('"POST /v1/completions HTTP/1.1" 200')  # the server is shared
    proc = python(tmp_path, "track_openai_client.py", "--base-url", tiny_server.base_url, "--requests", "3",
                  "--max-tokens", "8", "--idle-s", "0.5")  # fmt: skip
    succeeded(proc)
    (run,) = experiment_runs(tmp_path, "serving-client")
    m = run.data.metrics
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == str(shipped_model_path())  # the server's only model
    assert m["measurement/requests"] == 3 and m["window/request/count"] == 3
    assert 0 < m["measurement/generated_tokens"] <= 3 * 8  # the server's counts: a story may end sooner
    assert m["energy/j_per_request"] >= 0 and "energy/idle_w" in m
    tokens = m["measurement/generated_tokens"]
    assert proc.stdout.startswith(f"run {run.info.run_id}: 3 requests, {tokens:.0f} tokens; ")
    assert tiny_server.log_path.read_text().count('"POST /v1/completions HTTP/1.1" 200') == answered + 3
    # Nothing answering: one sentence, and no run.
    nobody = f"http://127.0.0.1:{free_port()}/v1"
    gone = python(tmp_path, "track_openai_client.py", "--base-url", nobody)
    assert gone.returncode == 1
    assert gone.stderr == f"nothing answers at {nobody}; start the server first (examples/README.md).\n"
    assert len(all_runs(client)) == 1


@pytest.mark.e2e
def test_evaluate_registered_model_registers_the_tiny_model_then_evaluates_it(client: Any, tmp_path: Path) -> None:
    proc = python(tmp_path, "evaluate_registered_model.py", "--rows", "2")
    succeeded(proc)
    version = client.get_model_version_by_alias("tiny-chat", "efficient")
    (measured,) = [r for r in experiment_runs(tmp_path) if r.data.tags.get("mlflow_energy.status") == "finished"]
    assert version.tags["source_run_id"] == measured.info.run_id  # the quick measurement it made first
    (evaluation,) = experiment_runs(tmp_path, "mlflow-energy-evaluations")
    m = evaluation.data.metrics
    assert evaluation.info.status == "FINISHED"
    # Each predict call is a window of tens of ms, which an estimate may leave without a reading.
    assert m.get("measurement/requests", 0) + m["measurement/rejected_windows"] == 2
    assert m["latency/request_s_p50"] > 0
    assert f"tiny-chat@efficient (version {version.version}) on 2 prompts, batch 1: run {evaluation.info.run_id}" in (
        proc.stdout)  # fmt: skip
    assert all(f"\n  {label} " in proc.stdout for label in ("J/token", "J/request", "requests measured", "headline"))


@pytest.mark.parametrize(
    ("script", "refusal"),
    [("gpu_llama_1b.sh", "mlflow-energy: error: device='cuda' asks for a GPU but none is visible here; "),
     ("gpu_sparsity.sh", "gpu_sparsity.sh: error: no GPU is visible here; ")],
    ids=["gpu_llama_1b", "gpu_sparsity"],
)  # fmt: skip
def test_gpu_examples_refuse_without_a_gpu_in_one_sentence(script: str, refusal: str, client: Any,
                                                           tmp_path: Path) -> None:  # fmt: skip
    proc = example(tmp_path, "bash", str(EXAMPLES / script), env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == EXIT_CONFIG_ERROR
    (sentence,) = proc.stderr.splitlines()  # no traceback, no log
    assert sentence.startswith(refusal)
    assert all_runs(client) == []
