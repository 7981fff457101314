"""Serving end to end: a real `transformers serve` of the shipped tiny model on the CPU, started
by the tool or by the test (attach mode), loaded by the real CLI, read back from SQLite."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mlflow_energy.bench.stats import percentile
from mlflow_energy.inference.models import SHIPPED_DIR

from processes import (
    EXIT_CONFIG_ERROR,
    QUICK_SERVING,
    SMALL_CACHE,
    experiment_runs,
    result_of,
    run_cli,
    sweep_runs,
    wait_until,
)

pytestmark = pytest.mark.e2e

TINY = str(SHIPPED_DIR / "tiny-stories")


def _csv_rows(client, run_id: str) -> list[dict[str, str]]:
    text = Path(client.download_artifacts(run_id, "requests.csv")).read_text()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def serving_sweep(tmp_path_factory: pytest.TempPathFactory):
    """The shipped grid at concurrency 1 and 4, continuous batching on (the default)."""
    folder = tmp_path_factory.mktemp("serving-sweep")
    proc = run_cli(folder, "run", "-m", "+experiment=serving_concurrency", *QUICK_SERVING, "serving.concurrency=1,4",
                   SMALL_CACHE, "hydra.sweep.dir=multirun")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return folder, proc


def test_serving_runs_log_records_consistent_with_their_metrics(serving_sweep) -> None:
    folder, _ = serving_sweep
    client, _, children = sweep_runs(folder)
    assert sorted(c.data.params["serving.concurrency"] for c in children) == ["1", "4"]
    for child in children:
        m, tags = child.data.metrics, child.data.tags
        assert child.info.status == "FINISHED" and tags["mlflow_energy.status"] == "finished"
        assert tags["mlflow_energy.serving.server"].startswith("transformers serve ")
        assert tags["mlflow_energy.serving.server"].endswith(
            "(continuous batching, --cb-num-blocks 64 --cb-max-batch-tokens 256)")
        assert tags["mlflow_energy.serving.model"] == TINY
        assert tags["mlflow_energy.serving.measured_gpus"] == "none (CPU only)"
        assert child.data.params["scenario"] == "serving" and "workload.batch_size" not in child.data.params
        rows = _csv_rows(client, child.info.run_id)
        counted = [r for r in rows if r["window"] != ""]
        assert counted and all(r["status"] == "ok" for r in counted)
        assert {r["phase"] for r in rows} >= {"warmup", "steady"}
        assert not any(r["phase"] == "warmup" and r["window"] for r in rows)  # warm-up never counts
        # serving.lengths=chat (the default): each request asks for a drawn length, at most the cap.
        asked = [int(r["max_tokens"]) for r in rows]
        assert len(set(asked)) > 1 and max(asked) <= 24
        assert all(int(r["completion_tokens"]) <= int(r["max_tokens"]) for r in counted)
        # Sums and counts: the metrics are the counted records' totals.
        assert m["measurement/requests"] == len(counted)
        generated = sum(float(r["tokens_in_windows"]) for r in rows)  # output tokens made inside the windows
        assert m["measurement/generated_tokens"] == round(generated)
        assert sum(float(r["tokens_in_windows"]) for r in counted) <= sum(int(r["completion_tokens"]) for r in counted)
        assert m["energy/j_per_request"] * len(counted) == pytest.approx(m["energy/total_j"], rel=1e-9)
        assert m["energy/j_per_token"] * generated == pytest.approx(m["energy/total_j"], rel=1e-9)
        assert m["throughput/requests_per_s"] == pytest.approx(len(counted) / m["measurement/duration_s"])
        latencies = [float(r["latency_s"]) for r in counted]
        assert m["latency/request_s_p90"] == pytest.approx(percentile(latencies, 90))
        # A request whose model stopped at once streams no text: it has no time to first token.
        ttfts = [float(r["ttft_s"]) for r in counted if r["ttft_s"]]
        assert m["latency/ttft_s_p50"] == pytest.approx(percentile(ttfts, 50))
        assert m["measurement/errors"] == 0 and m["measurement/ramp_up_s"] >= 0 and m["measurement/drain_s"] >= 0
        assert m["energy/wh_per_1k_requests"] == pytest.approx(m["energy/j_per_request"] / 3.6)
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"requests.csv", "latency_cdf.png", "server.log", "power_timeline.png", "result.json"} <= artifacts


def test_the_server_is_gone_after_each_run(serving_sweep) -> None:
    folder, _ = serving_sweep
    results = [result_of(folder / "multirun" / str(n)) for n in (0, 1)]
    for result in results:
        pid = result["serving"]["server_pid"]
        assert pid and not (psutil.pid_exists(pid) and "transformers" in " ".join(psutil.Process(pid).cmdline()))


def test_serving_sweep_reports_energy_per_request_against_p90_latency(serving_sweep) -> None:
    folder, proc = serving_sweep
    client, parents, _ = sweep_runs(folder)
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/finished"] == 2
    summary = Path(client.download_artifacts(parent.info.run_id, "summary.csv")).read_text()
    header = next(csv.reader(io.StringIO(summary)))
    assert header[:7] == ["point", "energy/j_per_request", "energy/j_per_request_ci95_low",
                          "energy/j_per_request_ci95_high", "latency/request_s_p90", "latency/request_s_p90_ci95_low",
                          "latency/request_s_p90_ci95_high"]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(summary)))
    assert any(r["pareto"] == "True" for r in rows)
    assert "mlflow_energy.best.energy/j_per_request" in parent.data.tags
    assert "pareto.png" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "J/request [95%]" in proc.stdout


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A `transformers serve` the test starts itself (no continuous batching), and stops."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "own-server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--device", "cpu", TINY], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"

    def answers() -> bool:
        import urllib.request

        assert proc.poll() is None, (tmp_path / "own-server.log").read_text()[-2000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return True
        except OSError:
            return False

    try:
        wait_until(answers, "the test's own server to answer /health")
        yield url, proc
    finally:
        if proc.poll() is None:  # the test may have stopped it itself
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        log.close()


def test_attach_mode_measures_a_server_the_user_runs_and_leaves_it_running(own_server, tmp_path: Path) -> None:
    url, server = own_server
    proc = run_cli(tmp_path, "run", *QUICK_SERVING, f"serving.url={url}", "serving.concurrency=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = experiment_runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow_energy.serving.server"] == f"attached: {url}"
    assert run.data.tags["mlflow_energy.serving.model"] == TINY  # the one model the server lists
    assert run.data.metrics["measurement/requests"] > 0
    assert server.poll() is None  # not ours to stop
    # A model the server does not serve, then nothing listening: refused before any run, one sentence each.
    wrong = run_cli(tmp_path, "run", *QUICK_SERVING, f"serving.url={url}", "serving.model_name=nope")
    assert wrong.returncode == EXIT_CONFIG_ERROR
    assert f"mlflow-energy: error: the server at {url} does not serve model 'nope': it lists {TINY}" in wrong.stderr
    server.terminate()
    server.wait(30)
    gone = run_cli(tmp_path, "run", *QUICK_SERVING, f"serving.url={url}")
    assert gone.returncode == EXIT_CONFIG_ERROR and "Traceback" not in gone.stderr
    assert f"mlflow-energy: error: nothing answers at serving.url={url} (" in gone.stderr
    assert len(experiment_runs(tmp_path)) == 1
