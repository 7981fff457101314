"""What the MLflow UI shows, built without a browser: a sweep's answer (the parent's
description), its comparison view (the saved-view tag), the experiment's line, and the timeline
as system metrics. The browser test (test_ui.py) checks what a user sees of them."""

import json
import random
import re

import mlflow
import pytest

from mlflow_energy.bench.stats import Interval
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.meter.sampler import TimelineSample
from mlflow_energy.record.run_record import timeline_metrics
from mlflow_energy.record.ui_view import (
    NOTE_END,
    NOTE_START,
    TESTED_UI_VERSIONS,
    VIEW_TAG_PREFIX,
    experiment_note,
    point_colours,
    read_view_tag,
    ui_version,
    view_path,
    view_state,
    view_tag,
    view_url,
    views_to_prune,
)
from mlflow_energy.store import names
from mlflow_energy.sweep.answer import experiment_line, short_trust, sweep_answer
from mlflow_energy.sweep.comparison import comparison, swept_params
from mlflow_energy.sweep.report import (
    BATCH_AXES,
    PointRow,
    SweepReport,
    best_per_metric,
    mark_pareto,
    mark_verdicts,
)

ENERGY, SPEED, PPL = names.ENERGY_PER_TOKEN, names.THROUGHPUT, names.PERPLEXITY
NOISY = ("estimate: no measured energy source here (cpu:estimate are CodeCarbon models); compare these figures only "
         "with other estimates; interval 6.0% wide, target 5%: the machine is noisy; repeat the run")  # fmt: skip


def point(name: str, energy: float, half: float | None, speed: float, model: str, status: str = "finished",
          run: str | None = None) -> PointRow:  # fmt: skip
    intervals = {ENERGY: Interval(energy, energy - half, energy + half, 3)} if half else {}
    params = {"model.name": model, "model.weights": "random" if model == "tiny" else "pretrained",
              "workload.batch_size": name[-1], "bench.idle_s": "0.2", "sweep.replicate": "0"}  # fmt: skip
    return PointRow(name, status, [run or f"run{name[-1]}"], "7", params,
                    {ENERGY: energy, SPEED: speed, PPL: 2.0 if model == "tiny-stories" else 900.0, "system/x": 1.0},
                    intervals, "one run's windows", trust="ok" if status != "failed" else "")  # fmt: skip


@pytest.fixture
def report(tmp_path) -> SweepReport:
    rows = [
        point("bs=1", 0.030, 0.002, 900, "tiny"),
        point("bs=4", 0.010, 0.001, 2700, "tiny-stories"),
        point("bs=3", 0.0105, 0.001, 2600, "tiny", status="skipped", run="old3"),  # reused from an earlier launch
        point("bs=8", 0.005, None, 100, "tiny", status="failed"),  # partial figures: never the answer
    ]
    rows[0].trust = NOISY
    mark_pareto(rows)
    best = best_per_metric(rows)
    mark_verdicts(rows, best)
    return SweepReport(rows, tmp_path, {}, {}, best, BATCH_AXES, "sweep abc: 4 points")


def test_the_parent_description_answers_with_links_that_work_inside_the_ui(report: SweepReport) -> None:
    text = sweep_answer(report, view_path("7", "mlflow-energy-abc"))
    # bs=3's interval overlaps the lowest: that comes first, and no point is called the most efficient.
    assert text.startswith("### sweep abc: 4 points\n\n**2 points cannot be told apart on J/token (their 95% "
                           "intervals overlap); lowest value: [bs=4](#/experiments/7/runs/run4), 0.01 [0.009-0.011] "
                           "J/token (95% interval over one run's windows).** The others: bs=3.")  # fmt: skip
    assert "Most energy-efficient" not in text
    assert "It is also the best point for speed: 2700 tokens/s.\n" in text
    assert "It is also the best point for quality: perplexity 2.\n" in text
    assert "[Open the comparison of every point (charts and table)](#/experiments/7/runs?viewStateShareKey=" in text
    assert "| lowest energy per output token (the headline) | [bs=4](#/experiments/7/runs/run4) | 0.01 [0.009-0.011] J/token | bs=3 |" in text  # noqa: E501
    assert "| highest throughput | [bs=4](#/experiments/7/runs/run4) | 2700 tokens/s | not tested (no interval) |" in text  # noqa: E501
    # Every point of the grid, reused and failed ones included, each linked to its run.
    assert "#### Every point (4)" in text
    assert "| [bs=3](#/experiments/7/runs/old3) | 0.0105 [0.0095-0.0115] | 2600 | 900 |  | ok | reused from an earlier launch |" in text  # noqa: E501
    # Its figures are estimates: never labelled "measured".
    assert "| [bs=1](#/experiments/7/runs/run1) | 0.03 [0.028-0.032] | 900 | 900 |  | estimate; interval 6.0% wide, target 5% | estimated |" in text  # noqa: E501
    assert "| [bs=8](#/experiments/7/runs/run8) | 0.005 | 100 | 900 |  | - | failed |" in text
    assert "viewStateShareKey" not in sweep_answer(report, None)  # no saved view: no link to it


def test_the_answer_says_what_the_cheapest_point_costs_against_the_fastest(report: SweepReport) -> None:
    report.rows[0].metrics[SPEED] = 3000.0  # bs=1 becomes the fastest
    report.best.update(best_per_metric(report.rows))
    text = sweep_answer(report, None)
    assert "Its cost in speed: 2700 tokens/s, against 3000 tokens/s for the best, [bs=1](#/experiments/7/runs/run1).\n" in text  # noqa: E501


def test_the_experiment_line_and_description_keep_what_the_user_wrote() -> None:
    first = experiment_note("", "line one")
    assert first == f"{NOTE_START}\nline one\n{NOTE_END}"
    mine = experiment_note(f"Our team's notes.\n\n{first}", "line two")
    assert mine == f"{NOTE_START}\nline two\n{NOTE_END}\n\nOur team's notes."
    assert experiment_note(mine, "line three").count(NOTE_START) == 1


def test_the_experiment_line_links_the_view_and_the_answer(report: SweepReport) -> None:
    line = experiment_line(report, "#/view", "#/experiments/7/runs/parent")
    assert line == ("**[Open the newest sweep's comparison](#/view)**: sweep abc: 4 points; 2 points cannot be told "
                    "apart on J/token; lowest value: bs=4, 0.01 [0.009-0.011] J/token "
                    "([the answer](#/experiments/7/runs/parent)).")  # fmt: skip


def test_a_winner_is_named_only_where_no_other_interval_overlaps_it(report: SweepReport) -> None:
    report.rows[2].intervals.clear()  # bs=3 has no interval now: untested, not tied
    mark_verdicts(report.rows, report.best)
    text = sweep_answer(report, None)
    assert ("**Most energy-efficient: [bs=4](#/experiments/7/runs/run4), 0.01 [0.009-0.011] J/token (95% interval "
            "over one run's windows).** No other point's 95% interval overlaps it. Not tested (no interval): bs=3."
            in text)  # fmt: skip


def test_the_comparison_view_shows_the_measured_points_sorted_with_the_charts_that_answer(report: SweepReport) -> None:
    shown = comparison(report.rows, report.axes, ["model", "workload.batch_size"])
    assert shown.run_ids == ["run1", "run4", "old3"]  # the failed point's run is left out
    assert shown.params == ["model.name", "workload.batch_size"]  # model.weights follows model.name
    state = read_view_tag(view_tag("mlflow-energy: sweep abc", view_state(shown)))
    assert state["searchFilter"] == "attributes.run_id IN ('run1', 'run4', 'old3')"
    assert (state["orderByKey"], state["orderByAsc"]) == (f"metrics.`{ENERGY}`", True)
    assert state["runsHiddenMode"] == "SHOW_ALL"  # every point visible, not the UI's first 10
    assert state["selectedColumns"][:3] == [f"metrics.`{ENERGY}`", f"metrics.`{SPEED}`", f"metrics.`{PPL}`"]
    assert "params.`model.name`" in state["selectedColumns"] and f"tags.`{names.TAG_TRUST}`" in state["selectedColumns"]
    cards = [c for c in state["compareRunCharts"] if not c["deleted"]]
    assert [c["type"] for c in cards] == ["SCATTER", "PARALLEL", "BAR", "BAR", "BAR"]
    assert cards[0]["xaxis"] == {"key": SPEED, "type": "METRIC"}
    assert cards[0]["yaxis"] == {"key": ENERGY, "type": "METRIC"}
    assert cards[1]["selectedParams"] == ["model.name", "workload.batch_size"]
    assert cards[1]["selectedMetrics"] == [ENERGY, SPEED, PPL]
    hidden = {c["metricKey"] for c in state["compareRunCharts"] if c["deleted"]}
    assert "system/x" in hidden and names.interval_keys(ENERGY)[0] in hidden and ENERGY not in hidden
    assert {c["metricSectionId"] for c in state["compareRunCharts"]} == {state["compareRunSections"][0]["uuid"]}


def test_parallel_coordinates_leave_out_a_param_some_points_lack(report: SweepReport) -> None:
    # Only the pruned point logs the pruning method: MLflow's chart would drop every other point.
    dense, pruned = (next(r for r in report.rows if r.name == name) for name in ("bs=3", "bs=4"))
    dense.params = dict(pruned.params)  # the same model and batch: only pruning tells them apart
    pruned.params["model.pruning.method"] = "magnitude"
    shown = comparison(report.rows, report.axes, ["model", "workload.batch_size"])
    assert "model.pruning.method" in shown.params  # a column of the table still
    state = read_view_tag(view_tag("v", view_state(shown)))
    parallel = next(c for c in state["compareRunCharts"] if c["type"] == "PARALLEL")
    assert parallel["selectedParams"] == [p for p in shown.params if p != "model.pruning.method"]
    assert "params.`model.pruning.method`" in state["selectedColumns"]


def test_every_point_has_a_colour_of_its_own_and_its_replicates_share_it(report: SweepReport) -> None:
    shown = comparison(report.rows, report.axes, ["model", "workload.batch_size"])
    assert set(shown.run_colours) == set(shown.run_ids)
    assert len(set(shown.run_colours.values())) == len(shown.run_ids)
    replicated = next(r for r in report.rows if r.measured and r.run_ids)
    replicated.run_ids = ["rep1", "rep2"]
    again = comparison(report.rows, report.axes, ["model", "workload.batch_size"])
    assert again.run_colours["rep1"] == again.run_colours["rep2"]
    assert len(set(point_colours(12))) == 12 and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in point_colours(12))


def test_a_view_too_large_for_a_tag_is_not_written() -> None:
    draw = random.Random(0)  # run ids are random hex: they barely compress
    huge = {"searchFilter": "".join(f"{draw.getrandbits(128):032x}" for _ in range(2000))}
    assert view_tag("big", huge) is None


def test_swept_params_map_a_group_choice_to_the_param_the_runs_log(report: SweepReport) -> None:
    rows = [r for r in report.rows if r.measured]
    assert swept_params(rows, ["+model"]) == ["model.name", "workload.batch_size"]
    assert swept_params(rows, []) == ["model.name", "workload.batch_size"]


def test_only_the_tools_oldest_views_are_pruned() -> None:
    tags = {VIEW_TAG_PREFIX + f"mlflow-energy-{i}": json.dumps({"updatedAt": i}) for i in range(12)}
    tags[VIEW_TAG_PREFIX + "someone-elses"] = json.dumps({"updatedAt": 0})
    tags[VIEW_TAG_PREFIX + "mlflow-energy-broken"] = "not json"
    assert sorted(views_to_prune(tags)) == sorted(VIEW_TAG_PREFIX + f"mlflow-energy-{i}" for i in ("broken", 0, 1))


def test_the_view_is_saved_only_for_the_mlflow_versions_it_was_tested_with(tmp_path) -> None:
    assert ui_version(f"sqlite:///{tmp_path}/mlflow.db") == mlflow.__version__
    assert ui_version("http://127.0.0.1:9") is None  # nothing answers: no view
    assert "3.4.0" not in TESTED_UI_VERSIONS
    assert view_url("sqlite:///mlflow.db", "7", "k").startswith("http://127.0.0.1:5000/#/experiments/7/runs?")
    assert view_url("https://user:pw@host/", "7", "k").startswith("https://***@host/#/experiments/7/runs?")


def test_the_timeline_becomes_system_metrics_with_its_phases() -> None:
    idle = Measurement("idle", start_s=0.0, duration_s=1.0)
    generate = Measurement("generate_0", start_s=2.0, duration_s=1.0)
    samples = [TimelineSample(t, 1_000 + int(t * 1000), device, **values) for t in (0.5, 1.5, 2.5)
               for device, values in (("gpu0", {"power_w": 100.0 + t, "temperature_c": 40.0}),
                                      ("host", {"utilization_pct": 50.0, "memory_used_mb": 300.0}))]  # fmt: skip
    metrics = timeline_metrics(samples, [("idle", idle), ("generate", generate)])
    series: dict[str, list] = {}
    for m in metrics:
        series.setdefault(m.key, []).append((m.step, m.timestamp, m.value))
    assert series["system/gpu_0_power_usage_watts"] == [(0, 1500, 100.5), (1, 2500, 101.5), (2, 3500, 102.5)]
    assert [v for _, _, v in series["system/gpu_0_temperature_celsius"]] == [40.0] * 3
    assert [v for _, _, v in series["system/cpu_utilization_percentage"]] == [50.0] * 3
    assert [v for _, _, v in series["system/process_memory_usage_megabytes"]] == [300.0] * 3
    # Each phase at its start and end, on the wall clock (the first sample: 1,500 ms at 0.5 s).
    assert series[names.SYSTEM_PHASE] == [(0, 1000, 1.0), (1, 2000, 1.0), (2, 3000, 2.0), (3, 4000, 2.0)]


def test_a_warning_is_named_by_the_words_before_its_colon() -> None:
    assert short_trust(NOISY) == "estimate; interval 6.0% wide, target 5%"
    assert (short_trust("ok"), short_trust("")) == ("ok", "-")
