"""Pure pieces of sweeps: Pareto fronts, the replicated job list, grid naming, replicate
aggregation, the indistinguishable-from-best marking, the report's columns, GPU leases."""

import csv
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from mlflow_energy.bench.gpu_lease import gpu_lease
from mlflow_energy.bench.stats import Interval, positive_interval
from mlflow_energy.config import ConfigError
from mlflow_energy.record.run_names import point_name, point_of_run_name, replicate_run_name
from mlflow_energy.report.pareto import _label_box, _overlap, pareto_front, place_labels
from mlflow_energy.report.replicates import combine
from mlflow_energy.sweep.callback import grid_points, swept_keys
from mlflow_energy.sweep.report import (
    BATCH_AXES,
    BEST,
    TIED,
    UNTESTED,
    WORSE,
    PointRow,
    best_per_metric,
    best_tag,
    energy_answer,
    mark_pareto,
    mark_verdicts,
    point_rows,
    write_csv,
)
from mlflow_energy.sweep.state import PointOutcome
from mlflow_energy.sweep.sweeper import ReplicatedSweeperConf, cartesian_grid, plan_jobs

ENERGY, SPEED, TTFT = "energy/j_per_token", "throughput/tokens_per_s", "latency/ttft_s_p50"
GRID = ["model.dtype=float32,bfloat16", "workload.batch_size=1,4,16"]


def test_pareto_front_keeps_the_undominated() -> None:
    costs = [1.0, 2.0, 0.5, 3.0, 1.0]
    gains = [10.0, 20.0, 5.0, 15.0, 10.0]
    # 3 is dominated by 1 (cheaper and faster); 0 and 4 are equal, both kept.
    assert pareto_front(costs, gains) == [0, 1, 2, 4]
    assert pareto_front([], []) == []


def test_labels_of_crowded_points_do_not_overlap() -> None:
    points = [(100.0, 100.0), (101.0, 100.0), (100.0, 102.0), (300.0, 50.0)]  # three nearly on top of each other
    sizes = [(60.0, 12.0)] * 4
    offsets = place_labels(points, sizes)
    boxes = [_label_box(p, s, o) for p, s, o in zip(points, sizes, offsets, strict=True)]
    assert all(_overlap(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert offsets[3] == (6, 4)  # a point alone keeps the first place: right of it, above


def test_mark_pareto_and_best_ignore_failed_points() -> None:
    rows = [
        PointRow("a", "finished", ["1"], "0", metrics={ENERGY: 0.2, SPEED: 100}),
        PointRow("b", "skipped", ["2"], "0", metrics={ENERGY: 0.1, SPEED: 50}),
        PointRow("c", "finished", ["3"], "0", metrics={ENERGY: 0.3, SPEED: 40}),
        PointRow("d", "failed", ["4"], "0", metrics={ENERGY: 0.05, SPEED: 500}, error="boom"),  # partial figures
    ]
    mark_pareto(rows)
    assert [r.pareto for r in rows] == [True, True, False, False]
    best = best_per_metric(rows)
    assert best[ENERGY].name == "b" and best[SPEED].name == "a"  # never the failed point


def sweep_config(replicates: int = 1, shuffle_seed: int = 0, sweeper: str = ReplicatedSweeperConf._target_):
    return OmegaConf.create({
        "hydra": {"sweeper": {"_target_": sweeper, "params": {"workload.batch_size": "1,2"}},
                  "overrides": {"task": ["model.dtype=float32,bfloat16", "bench=quick"]}},
        "sweep": {"replicates": replicates, "shuffle_seed": shuffle_seed},
    })  # fmt: skip


def test_grid_points_include_sweeper_params_and_command_line() -> None:
    points = grid_points(sweep_config())
    assert len(points) == 4
    keys = swept_keys(points)
    assert keys == ["workload.batch_size", "model.dtype"]
    assert point_name(points[0], keys) == "workload.batch_size=1,model.dtype=float32"
    assert grid_points(sweep_config(sweeper="hydra_plugins.optuna.OptunaSweeper")) is None  # decides as it goes


def test_one_replicate_is_the_basic_grid_in_its_order() -> None:
    assert plan_jobs(GRID, 1, shuffle_seed=7) == cartesian_grid(GRID)
    assert cartesian_grid(GRID)[:2] == [["model.dtype=float32", "workload.batch_size=1"],
                                        ["model.dtype=float32", "workload.batch_size=4"]]  # fmt: skip


def test_replicates_measure_every_point_once_per_shuffled_round() -> None:
    grid = cartesian_grid(GRID)
    jobs = plan_jobs(GRID, 3, shuffle_seed=0)
    assert len(jobs) == 18
    for k in range(3):
        round_k = jobs[6 * k : 6 * (k + 1)]
        assert all(job[-1] == f"sweep.replicate={k}" for job in round_k)
        assert sorted(job[:-1] for job in round_k) == sorted(grid)  # every point once per round
    first, second = [job[:-1] for job in jobs[:6]], [job[:-1] for job in jobs[6:12]]
    assert first != grid and second != first  # each round in an order of its own


def test_the_shuffle_is_fixed_by_the_seed() -> None:
    assert plan_jobs(GRID, 3, shuffle_seed=5) == plan_jobs(GRID, 3, shuffle_seed=5)
    assert plan_jobs(GRID, 3, shuffle_seed=5) != plan_jobs(GRID, 3, shuffle_seed=6)
    assert sorted(plan_jobs(GRID, 3, shuffle_seed=5)) == sorted(plan_jobs(GRID, 3, shuffle_seed=6))


def test_replicated_grid_names_points_without_the_replicate() -> None:
    points = grid_points(sweep_config(replicates=2))
    assert len(points) == 8
    keys = swept_keys(points)
    assert keys == ["workload.batch_size", "model.dtype"]  # sweep.replicate names nothing
    name = point_name(points[0], keys)
    assert "sweep." not in name
    assert replicate_run_name(name, 1, 2) == f"{name} #2/2" and replicate_run_name(name, 0, 1) == name
    assert point_of_run_name(replicate_run_name(name, 1, 2)) == name
    assert point_name(["sweep.replicates=3", "sweep.replicate=1"], []) == "default"  # a single point


@pytest.mark.parametrize(
    ("arguments", "replicates", "message"),
    [
        (["sweep.replicates=1,2"], 1, "sweep.replicates cannot be swept"),
        (["workload.batch_size=1,2", "sweep.replicate=1"], 2, "sweep.replicate is set by the sweeper"),
        (["workload.batch_size=1,2"], 0, "sweep.replicates=0 must be at least 1"),
    ],
)
def test_a_bad_plan_is_refused_in_one_sentence(arguments: list[str], replicates: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_jobs(arguments, replicates, 0)


def test_replicates_average_with_an_interval_across_them() -> None:
    runs = [{ENERGY: v, f"{ENERGY}_ci95_low": v * 0.99, f"{ENERGY}_ci95_high": v * 1.01, SPEED: s}
            for v, s in [(0.10, 100.0), (0.11, 90.0), (0.12, 80.0)]]  # fmt: skip
    figures = combine(runs)
    assert figures.metrics[ENERGY] == pytest.approx(0.11) and figures.runs == 3
    assert figures.intervals[ENERGY] == positive_interval([0.10, 0.11, 0.12], value=figures.metrics[ENERGY])
    assert f"{ENERGY}_ci95_low" not in figures.metrics  # one run's interval is not the point's
    assert figures.covers == "3 replicates"


def test_a_single_run_keeps_the_interval_of_its_windows() -> None:
    run = {ENERGY: 0.1, f"{ENERGY}_ci95_low": 0.098, f"{ENERGY}_ci95_high": 0.103, SPEED: 50.0,
           "measurement/repetitions": 7.0}  # fmt: skip
    figures = combine([run])
    assert figures.intervals == {ENERGY: Interval(0.1, 0.098, 0.103, 7)}  # tokens/s logged no interval
    assert figures.covers == "one run's windows"
    assert combine([{SPEED: 50.0}]).covers == ""  # no interval at all


def fake_run(run_id: str, metrics: dict[str, float], status_tags: dict[str, str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(run_id=run_id, experiment_id="0"),
                           data=SimpleNamespace(metrics=metrics, params={"workload.batch_size": "1"},
                                                tags=status_tags or {}))  # fmt: skip


def test_report_rows_group_replicates_by_point_hash_and_fall_back_to_one_per_run() -> None:
    runs = {"r1": fake_run("r1", {ENERGY: 0.10}), "r2": fake_run("r2", {ENERGY: 0.12}),
            "r3": fake_run("r3", {ENERGY: 9.0}, {"mlflow_energy.error": "out of memory"}),
            "r4": fake_run("r4", {ENERGY: 0.11}), "old1": fake_run("old1", {ENERGY: 0.2}),
            "old2": fake_run("old2", {ENERGY: 0.3})}  # fmt: skip
    client = SimpleNamespace(get_run=runs.__getitem__)
    outcomes = [
        PointOutcome(0, "bs=1", "finished", "r2", "c1", point_hash="p", replicate=1),
        PointOutcome(1, "bs=1", "skipped", "r1", "c0", point_hash="p", replicate=0),
        PointOutcome(2, "bs=1", "failed", "r3", "c2", "exit code 1", point_hash="p", replicate=2),
        PointOutcome(3, "bs=4", "finished", "old1", "c3"),  # no point hash: each run its own row
        PointOutcome(4, "bs=4", "finished", "old2", "c3"),
        PointOutcome(5, "bs=1", "finished", "r4", "c5", point_hash="p", replicate=3),
    ]
    rows = point_rows(client, outcomes)
    assert [r.name for r in rows] == ["bs=1", "bs=4", "bs=4"]
    point = rows[0]
    assert point.run_ids == ["r1", "r2", "r3", "r4"]  # in replicate order
    assert point.metrics[ENERGY] == pytest.approx(0.11)  # the failed replicate is left out
    assert (point.status, point.replicates, point.failed_replicates) == ("finished", 3, 1)
    assert point.covers == "3 replicates" and point.error == "out of memory"
    assert rows[1].replicates == 1 and rows[1].covers == ""


def ranked_rows() -> list[PointRow]:
    def row(name: str, value: float, low: float | None, high: float | None, status: str = "finished") -> PointRow:
        intervals = {ENERGY: Interval(value, low, high, 3)} if low is not None else {}
        return PointRow(name, status, [f"run-{name}"], "0", metrics={ENERGY: value, TTFT: value},
                        intervals=intervals, covers="3 replicates" if intervals else "")  # fmt: skip

    return [
        row("A", 0.100, 0.095, 0.105),
        row("B", 0.104, 0.101, 0.108),  # overlaps A: indistinguishable
        row("C", 0.120, 0.110, 0.130),  # clear of A: worse
        row("D", 0.110, None, None),  # no interval: untested
        row("E", 0.090, 0.080, 0.200, status="failed"),  # never ranked
    ]


def test_points_whose_interval_overlaps_the_best_are_indistinguishable() -> None:
    rows = ranked_rows()
    best = best_per_metric(rows)
    mark_verdicts(rows, best)
    assert best[ENERGY].name == "A"
    assert [r.verdicts.get(ENERGY) for r in rows] == [BEST, TIED, WORSE, UNTESTED, None]
    assert best_tag(ENERGY, best[ENERGY], rows) == "2 points cannot be told apart; best value A: 0.1 [0.095-0.105]"
    # No interval on the best (TTFT here): nothing can be tested.
    assert [r.verdicts.get(TTFT) for r in rows[:4]] == [BEST, UNTESTED, UNTESTED, UNTESTED]
    assert best_tag(TTFT, best[TTFT], rows) == "A: 0.1"
    # The console's answer says first that the data cannot pick a winner.
    assert energy_answer(rows, best, BATCH_AXES) == ("2 points cannot be told apart on J/token; lowest value: "
                                                     "A, 0.1 [0.095-0.105] J/token")  # fmt: skip
    rows[1].verdicts[ENERGY] = WORSE
    assert energy_answer(rows, best, BATCH_AXES) == "most energy-efficient: A, 0.1 [0.095-0.105] J/token"


def test_summary_csv_starts_with_the_key_metric_and_its_interval(tmp_path: Path) -> None:
    rows = ranked_rows()[:2]
    mark_verdicts(rows, best_per_metric(rows))
    write_csv(rows, ["workload.batch_size"], tmp_path / "summary.csv")
    with (tmp_path / "summary.csv").open() as f:
        header, *lines = list(csv.reader(f))
    assert header[:9] == ["point", ENERGY, f"{ENERGY}_ci95_low", f"{ENERGY}_ci95_high", SPEED,
                          f"{SPEED}_ci95_low", f"{SPEED}_ci95_high", "replicates", "interval"]  # fmt: skip
    assert header.index("status") > header.index(f"vs_best:{ENERGY}") and header[-2:] == ["run_ids", "error"]
    second = dict(zip(header, lines[1], strict=True))
    assert (second["point"], second[f"{ENERGY}_ci95_low"], second["interval"]) == ("B", "0.101", "3 replicates")
    assert second[f"vs_best:{ENERGY}"] == TIED


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
