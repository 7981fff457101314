"""Pure pieces of sweeps: Pareto fronts, grid naming, GPU leases."""

import threading
import time
from pathlib import Path

from omegaconf import OmegaConf

from mlflow_energy.bench.gpu_lease import gpu_lease
from mlflow_energy.report.pareto import pareto_front
from mlflow_energy.report.sweep_report import PointRow, best_per_metric, mark_pareto
from mlflow_energy.tracking.sweep import grid_points, point_name, swept_keys


def test_pareto_front_keeps_the_undominated() -> None:
    costs = [1.0, 2.0, 0.5, 3.0, 1.0]
    gains = [10.0, 20.0, 5.0, 15.0, 10.0]
    # 3 is dominated by 1 (cheaper and faster); 0 and 4 are equal, both kept.
    assert pareto_front(costs, gains) == [0, 1, 2, 4]
    assert pareto_front([], []) == []


def test_mark_pareto_and_best_ignore_failed_points() -> None:
    rows = [
        PointRow("a", "finished", "1", "0", metrics={"energy/j_per_token": 0.2, "throughput/tokens_per_s": 100}),
        PointRow("b", "finished", "2", "0", metrics={"energy/j_per_token": 0.1, "throughput/tokens_per_s": 50}),
        PointRow("c", "finished", "3", "0", metrics={"energy/j_per_token": 0.3, "throughput/tokens_per_s": 40}),
        PointRow("d", "failed", "4", "0", error="boom"),
    ]
    mark_pareto(rows)
    assert [r.pareto for r in rows] == [True, True, False, False]
    best = best_per_metric(rows)
    assert best["energy/j_per_token"].name == "b" and best["throughput/tokens_per_s"].name == "a"


def test_grid_points_include_sweeper_params_and_command_line() -> None:
    config = OmegaConf.create({
        "hydra": {
            "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                        "params": {"workload.batch_size": "1,2"}},
            "overrides": {"task": ["model.dtype=float32,bfloat16", "bench=quick"]},
        }
    })  # fmt: skip
    points = grid_points(config)
    assert len(points) == 4
    keys = swept_keys(points)
    assert keys == ["workload.batch_size", "model.dtype"]
    assert point_name(points[0], keys) == "workload.batch_size=1,model.dtype=float32"


def test_concurrent_jobs_get_different_gpus(tmp_path: Path) -> None:
    taken: list[str] = []
    both_held = threading.Barrier(2, timeout=10)

    def job() -> None:
        with gpu_lease(tmp_path, ["0", "1"], poll_s=0.01) as gpu:
            taken.append(gpu)
            both_held.wait()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == ["0", "1"]


def test_a_third_job_waits_for_a_free_gpu(tmp_path: Path) -> None:
    order: list[str] = []
    with gpu_lease(tmp_path, ["0"], poll_s=0.01):
        waiter = threading.Thread(target=lambda: order.append(_lease_once(tmp_path)))
        waiter.start()
        time.sleep(0.2)
        order.append("released")
    waiter.join(5)
    assert order == ["released", "0"]


def _lease_once(folder: Path) -> str:
    with gpu_lease(folder, ["0"], poll_s=0.01) as gpu:
        return gpu
