"""What the tests share: fixtures, and this folder on sys.path for the helper modules,
``fake_nvml`` (the NVML fake), ``processes`` (the real CLI, its short settings, its store, a
tracking server), ``postgres_server`` and ``slurm_cluster`` (the real servers the cluster tests
start).
No test module imports from another test module; tests/e2e/faults/conftest.py adds the fixtures of
the fault-injection tests."""

from __future__ import annotations

import os

# One compute thread per process: the workers (one per core) and the tool's processes they start
# run side by side, and torch's thread pools, each as wide as the machine, would only fight over
# the cores (set here, before torch is imported, so that every process started from now inherits it).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlflow_energy.bench.result import BenchResult, PrefillWindow, RepetitionWindow
from mlflow_energy.config import RunConfig, WorkloadConfig, config_hash
from mlflow_energy.meter.measurement import Measurement

sys.path.insert(0, str(Path(__file__).parent))

BATCH, NEW_TOKENS = 2, 10  # sample_result: 20 tokens per generate call


def _window(name: str, start: float, duration: float, gpu: float, cpu: float = 1.0, ram: float = 0.5,
            **kw: Any) -> Measurement:  # fmt: skip
    return Measurement(name, start, duration, {"0": gpu}, "nvml_counter", cpu, ram, "estimate:cpu_load", "estimate",
                       **kw)  # fmt: skip


@pytest.fixture
def window() -> Callable[..., Measurement]:
    """Makes one measured window: ``window(name, start_s, duration_s, gpu_j, cpu_j=1, ram_j=0.5)``,
    GPU energy from the NVML counter of GPU 0, CPU and RAM from CodeCarbon's estimates."""
    return _window


@pytest.fixture
def sample_result() -> BenchResult:
    """A result as the child leaves it before its summary: batch 2 x 10 new tokens; load, idle
    (51 W in all, 50 W GPU), prefill (6 J per call) and three generate windows of 40 tokens,
    400 J, 440 J and a third whose GPU counter did not move (rejected for energy)."""
    r = BenchResult(config=RunConfig(workload=WorkloadConfig(batch_size=BATCH, new_tokens=NEW_TOKENS)),
                    config_hash=config_hash(RunConfig()))  # fmt: skip
    r.load = _window("load", 0.0, 3.0, 300.0)
    r.idle = _window("idle", 3.0, 2.0, 100.0, cpu=2.0, ram=0.0)
    r.prefill = PrefillWindow(_window("prefill", 5.0, 1.0, 60.0, cpu=0.0, ram=0.0), [0.1] * 10)
    r.repetitions = [
        RepetitionWindow(_window("generate_1", 6.0, 2.0, 398.5), [1.0, 1.0]),
        RepetitionWindow(_window("generate_2", 8.0, 2.0, 438.5), [1.0, 1.0]),
        RepetitionWindow(_window("generate_3", 10.0, 2.0, 5.0, problems=["gpu0 energy counter did not move"]),
                         [1.0, 1.0]),  # fmt: skip
    ]
    r.carbon_intensity_g_per_kwh = 360.0
    r.pue = 1.5
    return r


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite tracking store, its schema created once: MLflow takes seconds for that."""
    from mlflow.tracking import MlflowClient

    database = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()
    return database


@pytest.fixture
def tracking_uri(_empty_store: Path, tmp_path: Path) -> str:
    """A SQLite tracking store and model registry of this test's own, in ``tmp_path``, empty."""
    database = tmp_path / "mlflow.db"
    shutil.copyfile(_empty_store, database)
    return f"sqlite:///{database}"


@pytest.fixture
def traced_store(tracking_uri: str) -> Iterator[str]:
    """``tracking_uri`` as the active store with the active experiment ``traces``, as a tracing
    user sets them; the active experiment (a global and MLFLOW_EXPERIMENT_ID) is put back after
    the test, so the next test on this worker does not look for it in its own store."""
    import os

    import mlflow
    import mlflow.tracking.fluent as fluent

    before = fluent._active_experiment_id, os.environ.get("MLFLOW_EXPERIMENT_ID")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("traces")
    yield tracking_uri
    fluent._active_experiment_id = before[0]
    if before[1] is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = before[1]


@pytest.fixture
def client(tracking_uri: str) -> Any:
    """An MlflowClient of ``tracking_uri``."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture(scope="module")
def postgres_tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real `mlflow server` on a real PostgreSQL server, both on 127.0.0.1 and stopped at the end
    of the module: the shared store docs/how-to/clusters.md sets up."""
    from postgres_server import PostgresUnavailable, postgres_server
    from processes import TrackingServer, free_port

    folder = tmp_path_factory.mktemp("postgres")
    try:
        with postgres_server(folder) as database:
            server = TrackingServer(folder, free_port(), backend_store_uri=database)
            server.start()
            yield server
            server.stop()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A Ray cluster of one head node on 127.0.0.1, started as `ray start` starts one: its address.
    Stopped (``ray stop``) at the end of the module."""
    from processes import RAY_LOOPBACK, cli_env, free_port

    ray = Path(sys.executable).parent / "ray"
    if not ray.is_file():
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    env, port = cli_env(RAY_LOOPBACK), free_port()
    started = subprocess.run(
        [str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--num-gpus=0", "--include-dashboard=false", "--object-store-memory=78643200", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real `mlflow server` on 127.0.0.1 with a SQLite store, stopped at the end of the module."""
    from processes import TrackingServer, free_port

    server = TrackingServer(tmp_path_factory.mktemp("server"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`transformers serve` of the shipped tiny model on 127.0.0.1 (CPU, no continuous batching),
    started and stopped by the tool's own code, as examples/README.md starts it."""
    from mlflow_energy.config import ModelConfig
    from mlflow_energy.inference.server import transformers_serve

    server = transformers_serve(ModelConfig(), "cpu", False, [], tmp_path_factory.mktemp("server") / "server.log")
    server.start(timeout_s=300)
    try:
        yield server
    finally:
        server.stop()
