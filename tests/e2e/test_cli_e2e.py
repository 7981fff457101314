"""End to end: the real `mlflow-energy` CLI in a subprocess, read back from the SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from processes import QUICK_NO_QUALITY, REPO, Launch, cli_env, result_of, run_cli, wait_until

pytestmark = pytest.mark.e2e

QUICK = ["bench=quick"]


def client_for(folder: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")


def only_run(folder: Path):
    client = client_for(folder)
    experiment = client.get_experiment_by_name("mlflow-energy")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("default")
    proc = run_cli(folder, "run", *QUICK)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, proc


def test_default_run_follows_the_measured_first_rule(default_run) -> None:
    """The headline counts measured energy only (RAPL where readable); with no measured source
    (CI's CPU) the estimate is the headline, and the console, the tags and the description say so."""
    folder, proc = default_run
    _, run = only_run(folder)
    m, tags = run.data.metrics, run.data.tags
    everything = m["energy/cpu_j"] + m["energy/ram_j"]
    assert m["energy/with_estimates_total_j"] == pytest.approx(everything, rel=1e-9)
    headline = next(line for line in proc.stdout.splitlines() if line.startswith("Headline: "))
    if tags["mlflow_energy.source.cpu"] == "rapl":
        assert m["energy/total_j"] == pytest.approx(m["energy/cpu_j"], rel=1e-9)
        assert tags["mlflow_energy.headline"] == "measured (cpu:rapl)" and "ESTIMATE" not in headline
    else:
        assert m["energy/total_j"] == pytest.approx(everything, rel=1e-9)
        assert tags["mlflow_energy.headline"].startswith("ESTIMATE (cpu:estimate:")
        assert tags["mlflow_energy.headline"] in headline  # before "; TOO NOISY ..." when the target was missed
        assert tags["mlflow_energy.trust"].startswith("estimate: no measured energy source")
        assert "ESTIMATE" in tags["mlflow.note.content"] and "Read before quoting: estimate" in proc.stdout
    low, high = m["energy/j_per_token_ci95_low"], m["energy/j_per_token_ci95_high"]
    assert 0 < low <= m["energy/j_per_token"] <= high
    assert m["measurement/ci_relative"] == pytest.approx((high - low) / 2 / m["energy/j_per_token"], rel=1e-6)
    if tags["mlflow_energy.source.cpu"] != "rapl":  # an estimate is not chased to the target: no noise verdict
        assert "the estimate is not refined to the 5% asked" in tags["mlflow_energy.trust"]
        assert "TOO NOISY" not in headline
    elif m["measurement/ci_relative"] > m["measurement/target_ci"]:  # stopped at bench.max_duration_s
        assert "the machine is noisy" in tags["mlflow_energy.trust"] and "the machine is noisy" in proc.stdout
        assert headline.endswith(f"TOO NOISY for the 5% asked (+-{m['measurement/ci_relative']:.1%})")
    assert all(value >= 0 for key, value in m.items() if not key.startswith("power/"))


def test_default_run_is_logged_and_consistent(default_run, tmp_path: Path) -> None:
    folder, proc = default_run
    client, run = only_run(folder)
    m, params, tags = run.data.metrics, run.data.params, run.data.tags
    assert run.info.status == "FINISHED"
    # No GPU here: the run says where each figure came from.
    assert "energy/gpu_j" not in m
    assert tags["mlflow_energy.source.gpu"] == "none"
    assert tags["mlflow_energy.source.cpu"].startswith(("estimate:", "rapl"))
    assert tags["mlflow_energy.source.ram"] == "estimate"
    assert m["energy/total_j"] > 0
    assert m["energy/j_per_token"] == pytest.approx(m["energy/total_j"] / m["measurement/generated_tokens"], rel=1e-9)
    assert m["measurement/generated_tokens"] % (4 * 32) == 0  # whole batches of 4 x 32 new tokens
    assert m["throughput/tokens_per_s"] > 0
    assert m["measurement/repetitions"] >= 2
    assert m["emissions/g_co2e"] > 0
    assert m["latency/ttft_s_p50"] < m["latency/request_s_p50"]
    assert params["model.name"] == "tiny-stories" and params["workload.batch_size"] == "4"
    # The trained default logs what quality its energy bought, and what measuring it cost.
    assert 1 < m["quality/perplexity"] < 10 and m["quality/tokens"] > 1000
    assert m["quality/eval_j"] > 0 and m["quality/eval_s"] > 0
    assert params["resolved_device"] == "cpu"
    assert len(tags["mlflow_energy.config_hash"]) == 12

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "result.json", "environment.json", "power_timeline.csv", "power_timeline.png",
            "codecarbon"} <= artifacts
    local = Path(client.download_artifacts(run.info.run_id, "result.json", str(tmp_path)))
    result = json.loads(local.read_text())
    assert result["status"] == "finished"
    for key, value in m.items():
        section, _, rest = key.partition("/")
        if section not in ("system", "time"):  # the timeline and the stages' times, not summary figures
            assert result["summary"][f"{section}_{rest}"] == pytest.approx(value), key

    out = proc.stdout
    assert "energy per token" in out and "throughput" in out
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in out


def test_the_run_says_where_its_time_went(default_run) -> None:
    folder, proc = default_run
    _, run = only_run(folder)
    m = run.data.metrics
    times = {k.removeprefix("time/").removesuffix("_s"): v for k, v in m.items() if k.startswith("time/")}
    assert {"startup", "checks", "store", "process_start", "load", "idle", "warmup", "prefill", "windows", "quality",
            "between_processes", "logging", "wall", "fixed"} <= times.keys()  # fmt: skip
    assert all(v >= 0 for v in times.values())
    stages = {k: v for k, v in times.items() if k not in ("wall", "fixed")}
    assert times["wall"] == pytest.approx(sum(stages.values()))
    work = stages["load"] + stages["warmup"] + stages["idle"] + stages["windows"]
    assert times["fixed"] == pytest.approx(times["wall"] - work)
    assert stages["windows"] >= m["measurement/duration_s"]  # the measured windows, and the steps between them
    line = next(line for line in proc.stdout.splitlines() if line.startswith("Time: "))
    assert line.startswith(f"Time: {times['wall']:.1f} s (fixed cost {times['fixed']:.1f} s) = start-up ")


def test_relogging_a_saved_result(default_run, tmp_path: Path) -> None:
    folder, _ = default_run
    out_dir = next(folder.glob("outputs/*/*"))
    other = tmp_path / "other.db"
    proc = run_cli(tmp_path, "log", str(out_dir), "--tracking-uri", f"sqlite:///{other}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    _, original = only_run(folder)
    runs = MlflowClient(tracking_uri=f"sqlite:///{other}").search_runs(
        [MlflowClient(tracking_uri=f"sqlite:///{other}").get_experiment_by_name("mlflow-energy").experiment_id]
    )
    assert len(runs) == 1 and runs[0].data.metrics["energy/total_j"] == original.data.metrics["energy/total_j"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["workload.batch_size=0"], "workload.batch_size=0 must be at least 1"),
        (["device=cuda"], "asks for a GPU but none is visible here; use device=cpu"),
        (["model.dtype=int3"], "model.dtype='int3' is not one of"),
        (["model.name=nobody/no-such-model"], "is not a shipped model"),
        (["model.quantization=int8_weight_only"], "model.quantization=int8_weight_only needs a GPU"),
        (["+precision=dynamic_int8", "model.dtype=bfloat16"], "quantizes float32 layers; set model.dtype=float32"),
    ],
)
def test_bad_input_fails_before_any_run_with_one_sentence(tmp_path: Path, overrides: list[str], message: str) -> None:
    proc = run_cli(tmp_path, "run", *overrides)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing half-made in the store


def test_wrong_type_is_refused_by_the_schema(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "workload.batch_size=many")
    assert proc.returncode != 0
    assert "workload.batch_size" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.usefixtures("tracking_uri")
def test_timeout_ends_the_run_failed_and_keeps_measurements(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    launch = Launch.start(tmp_path, "run", *QUICK, "bench.min_duration_s=100000", "bench.max_duration_s=100000",
                          "bench.timeout_s=10", f"hydra.run.dir={out_dir}")  # fmt: skip
    # The timeout fires at a point the test chooses, whatever the machine's speed: the CLI's clock
    # is frozen from the benchmark's start (its log begins) until it has saved a window.
    cli = psutil.Process(launch.proc.pid)
    wait_until(lambda: (out_dir / "bench.log").exists() or launch.proc.poll() is not None, "the benchmark to start")
    cli.suspend()
    try:
        wait_until(lambda: (out_dir / "result.json").exists() and result_of(out_dir)["repetitions"],
                   "the first measured window")  # fmt: skip
    finally:
        cli.resume()
    assert launch.wait() == 1
    client, run = only_run(tmp_path)
    assert run.info.status == "FAILED"
    assert "timed out after bench.timeout_s=10" in run.data.tags["mlflow_energy.error"]
    error_txt = Path(client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path)))
    assert "timed out" in error_txt.read_text()
    result = json.loads(Path(client.download_artifacts(run.info.run_id, "result.json", str(tmp_path))).read_text())
    assert result["status"] == "failed"
    assert result["load"]["duration_s"] > 0 and len(result["repetitions"]) >= 1  # taken before the timeout
    assert run.data.metrics["energy/total_j"] > 0


@pytest.mark.usefixtures("tracking_uri")
def test_child_crash_ends_the_run_failed_with_its_error(tmp_path: Path) -> None:
    # flash-attention is not installed on CPU machines: loading fails inside the child.
    proc = run_cli(tmp_path, "run", *QUICK, "model.attn_implementation=flash_attention_2")
    assert proc.returncode == 1
    _, run = only_run(tmp_path)
    assert run.info.status == "FAILED"
    assert "during load" in run.data.tags["mlflow_energy.error"]
    assert "Run failed" in proc.stdout


@pytest.mark.parametrize(
    ("flags", "experiment"),
    [(["--experiment-name", "mlproject"], "mlproject"),
     ([], "Default")],  # where `mlflow run` puts a run unless told; a run cannot move to tracking.experiment
)  # fmt: skip
def test_mlproject_entry_point_logs_into_the_mlflow_run(tmp_path: Path, flags: list[str], experiment: str) -> None:
    repo = REPO
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = cli_env({"MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    overrides = f"bench=quick quality=off workload.batch_size=2 tracking.run_name=quick hydra.run.dir={tmp_path}/out"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", str(repo), "--env-manager", "local", *flags,
         "-P", f"overrides={overrides}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    # No experiment of the tool's own beside the run's (an empty 'mlflow-energy' was made once).
    assert sorted(e.name for e in experiments) == sorted({"Default", experiment})
    runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=ViewType.ALL)
    assert len(runs) == 1  # the tool filled the run `mlflow run` created, no second one
    run = runs[0]
    assert run.info.experiment_id == client.get_experiment_by_name(experiment).experiment_id
    assert run.info.run_name == "quick"  # tracking.run_name, not the name MLflow picked when it created the run
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.entryPoint"] == "main"
    assert run.data.params["workload.batch_size"] == "2" and run.data.metrics["energy/total_j"] > 0
    # The console names the run that holds the result, and where it is.
    assert f"Stored in {uri}, experiment {experiment!r}, run {run.info.run_id} (FINISHED)" in proc.stdout.splitlines()
    assert f"/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}" in proc.stdout
    note = f"experiment {experiment!r}, which `mlflow run` created (tracking.experiment='mlflow-energy' does not apply"
    assert note in proc.stdout  # why the run is not where tracking.experiment says


@pytest.mark.usefixtures("tracking_uri")
def test_a_compiled_shape_is_cached_for_the_next_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = run_cli(tmp_path, "run", *QUICK_NO_QUALITY, "backend=static_compile",
                   env_extra={"XDG_CACHE_HOME": str(cache)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = cache / "mlflow-energy" / "torchinductor"
    assert kept.is_dir() and any(p.is_file() for p in kept.rglob("*"))  # what the next run's warm-up loads
    _, run = only_run(tmp_path)
    assert run.data.metrics["time/warmup_s"] > 0
