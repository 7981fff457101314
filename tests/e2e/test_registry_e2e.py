"""Registering the most efficient model: selection, evidence, alias, refusals."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from processes import QUICK, QUICK_NO_QUALITY, run_cli, sweep_runs

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def two_point_sweep(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("registry")
    proc = run_cli(folder, "run", "-m", *QUICK, "workload.batch_size=1,4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, parents, children = sweep_runs(folder)
    return folder, parents[0].data.tags["mlflow_energy.sweep_id"], children


def register(folder: Path, *args: str):
    return run_cli(folder, "register", "--experiment", "mlflow-energy", "--name", "tiny-chat", *args)


def registry(folder: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")


# The registrations build on one another: version 1 (the champion), then version 2 (a worse
# challenger). Fixtures make them in that order in whichever test comes first, so each test holds
# in any order and on any worker.
@pytest.fixture(scope="module")
def champion(two_point_sweep):
    """The first registration: the command's output and version 1 as it was registered."""
    folder, sweep_id, _ = two_point_sweep
    proc = register(folder, "--sweep", sweep_id, "--max", "quality/perplexity=12", "--min", "throughput/tokens_per_s=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, registry(folder).get_model_version_by_alias("tiny-chat", "efficient")


@pytest.fixture(scope="module")
def challenger(two_point_sweep, champion):
    """The second: only the slow, costlier point qualifies. The command's output and that run."""
    folder, sweep_id, children = two_point_sweep
    slowest = min(children, key=lambda c: c.data.metrics["throughput/tokens_per_s"])
    ceiling = slowest.data.metrics["throughput/tokens_per_s"] * 1.01
    proc = register(folder, "--sweep", sweep_id, "--max", f"throughput/tokens_per_s={ceiling}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, slowest


def test_register_picks_the_cheapest_qualifying_run_and_serves_text(two_point_sweep, champion) -> None:
    folder, _, children = two_point_sweep
    proc, version = champion
    cheapest = min(children, key=lambda c: c.data.metrics["energy/j_per_token"])
    assert "candidates by min energy/j_per_token" in proc.stdout and "first champion" in proc.stdout
    assert str(version.version) == "1" and version.tags["source_run_id"] == cheapest.info.run_id
    for tag, metric in [("energy.j_per_token", "energy/j_per_token"), ("quality.perplexity", "quality/perplexity")]:
        assert float(version.tags[tag]) == pytest.approx(cheapest.data.metrics[metric], rel=1e-5)
    assert version.tags["hardware"].startswith("cpu:")
    assert "# Energy card: tiny-stories" in version.description and cheapest.info.run_id in version.description

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/tiny-chat@efficient")
    texts = model.predict(["Once upon a time, there was a"])
    assert len(texts) == 1 and len(texts[0].split()) >= 5


def test_a_worse_challenger_leaves_the_alias(two_point_sweep, challenger) -> None:
    folder, _, _ = two_point_sweep
    proc, slowest = challenger
    client = registry(folder)
    assert str(client.get_model_version_by_alias("tiny-chat", "efficient").version) == "1"
    assert "stays on version 1" in proc.stdout
    assert client.get_model_version("tiny-chat", "2").tags["source_run_id"] == slowest.info.run_id


def test_other_hardware_is_not_compared(two_point_sweep, challenger) -> None:
    folder, sweep_id, _ = two_point_sweep
    client = registry(folder)
    client.set_model_version_tag("tiny-chat", "1", "hardware", "gpu:NVIDIA H100 80GB HBM3")
    proc = register(folder, "--sweep", sweep_id)
    assert proc.returncode == 0 and "figures from different hardware do not compare" in proc.stdout
    assert str(client.get_model_version_by_alias("tiny-chat", "efficient").version) == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max", "quality/perplexity=1.0"], "none of the 2 runs meets the constraints"),
        (["--metric", "energy/nothing_j"], "no run logged the metric 'energy/nothing_j'"),
        (["--sweep", "0000000000"], "has no FINISHED measurement run"),
        (["--max", "quality/perplexity"], "must read METRIC=NUMBER"),
        (["--tracking-uri", "http://127.0.0.1:9"], "does not answer"),
    ],
)
def test_refusals_leave_the_registry_untouched(tmp_path: Path, two_point_sweep, args: list[str], message: str) -> None:
    folder, _, _ = two_point_sweep
    client = registry(folder)
    before = [(v.name, v.version) for v in client.search_model_versions()]
    proc = register(folder, *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert [(v.name, v.version) for v in client.search_model_versions()] == before


@pytest.mark.usefixtures("tracking_uri")
def test_random_weights_are_not_registered(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", *QUICK_NO_QUALITY, "model=tiny")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = register(tmp_path)
    assert proc.returncode == 2 and "random weights: nothing to deploy" in proc.stderr


@pytest.mark.usefixtures("tracking_uri")
def test_a_pruned_sweep_registers_when_it_ends_and_the_model_loads_pruned(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", "-m", *QUICK, "bench.max_duration_s=1", "workload.batch_size=1",
                   "model.pruning.method=magnitude", "model.pruning.drop_layers=2", "register.enabled=true",
                   "register.name=tiny-sweep", "register.max=['quality/perplexity=12']")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    version = registry(tmp_path).get_model_version_by_alias("tiny-sweep", "efficient")
    _, _, (child,) = sweep_runs(tmp_path)
    assert version.tags["source_run_id"] == child.info.run_id
    assert (version.tags["model.pruning.method"], version.tags["model.pruning.drop_layers"]) == ("magnitude", "2")
    # The saved weights are the unpruned model's: loading prunes them again, as the run did.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    generator = mlflow.pyfunc.load_model("models:/tiny-sweep@efficient").unwrap_python_model().model
    layers = generator.model.layers
    assert len(layers) == generator.config.num_hidden_layers == 2
    zeros = sum(int((m.weight == 0).sum()) for m in layers.modules() if isinstance(m, torch.nn.Linear))
    total = sum(m.weight.numel() for m in layers.modules() if isinstance(m, torch.nn.Linear))
    assert zeros / total == pytest.approx(float(child.data.params["model.sparsity_reached"]), abs=1e-4)
