"""Registry selection and the champion alias, without a benchmark: runs are written straight
into a real SQLite tracking store (tags and params as the logger writes them), selection reads
them back through MLflow's search, and the alias is decided in a real SQLite model registry.

Selection: replicates (runs sharing a point hash and a hardware class) judged on their mean
with an interval; random weights never chosen; constraints; direction; ties broken on the
Pareto front, then speed; one sweep only; sweep parents left out; one-sentence refusals.
Alias: the first champion; other hardware or another metric never compared; better beyond
both 95% intervals, or by value with allow_overlap or where a version has no interval."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mlflow_energy.bench.stats import Interval, positive_interval
from mlflow_energy.registry.register import (
    Candidate,
    Constraint,
    Contender,
    RegistryError,
    Selection,
    _best,
    challenger_wins,
    decide_alias,
    default_direction,
    energy_card,
    select,
    version_tags,
)
from mlflow_energy.report.replicates import Figures
from mlflow_energy.store import names
from mlflow_energy.store.reads import hardware_class

ENERGY, SPEED, PERPLEXITY = names.ENERGY_PER_TOKEN, names.THROUGHPUT, names.PERPLEXITY
ENERGY_LOW, ENERGY_HIGH = names.interval_keys(ENERGY)
EXPERIMENT, MODEL, ALIAS = "mlflow-energy", "tiny-chat", "efficient"
CPU = "Test CPU"


# --- runs in a real tracking store ---------------------------------------------------------


@pytest.fixture
def experiment(client: MlflowClient, tmp_path: Path) -> str:
    return client.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri())


def log_run(client: MlflowClient, experiment_id: str, name: str, metrics: dict[str, float],
            params: dict[str, str] | None = None, tags: dict[str, str | None] | None = None,
            status: str = names.RUN_FINISHED, start_time: int | None = None) -> Any:  # fmt: skip
    """A measurement run as the logger leaves it: FINISHED, tag status=finished, measured on the
    test CPU, pretrained weights; ``tags`` adds tags or, with None, leaves one out."""
    run_id = client.create_run(experiment_id, run_name=name, start_time=start_time).info.run_id
    all_tags = {names.TAG_STATUS: "finished", names.TAG_CPU_MODEL: CPU, **(tags or {})}
    all_params = {names.PARAM_MODEL_NAME: "tiny-stories", names.PARAM_MODEL_WEIGHTS: "pretrained",
                  names.PARAM_BATCH_SIZE: "4", **(params or {})}  # fmt: skip
    client.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                     params=[Param(k, v) for k, v in all_params.items()],
                     tags=[RunTag(k, v) for k, v in all_tags.items() if v is not None])  # fmt: skip
    client.set_terminated(run_id, status)
    return client.get_run(run_id)


def choose(client: MlflowClient, metric: str = ENERGY, direction: str = "min", constraints: tuple[Constraint, ...] = (),
           sweep: str | None = None) -> Selection:  # fmt: skip
    return select(client, EXPERIMENT, sweep, metric, direction, list(constraints))


def by_name(selection: Selection) -> dict[str, Candidate]:
    return {c.name: c for c in selection.candidates}


def refusal(client: MlflowClient, **kwargs: Any) -> str:
    with pytest.raises(RegistryError) as refused:
        choose(client, **kwargs)
    return str(refused.value)


# --- selection -----------------------------------------------------------------------------


def test_replicates_are_judged_on_their_mean_not_on_their_best_run(client, experiment) -> None:
    energies = [0.090, 0.110, 0.130]
    replicates = [log_run(client, experiment, f"workload.batch_size=1 #{i + 1}/3",
                          {ENERGY: e, ENERGY_LOW: e * 0.99, ENERGY_HIGH: e * 1.01},
                          tags={names.TAG_POINT_HASH: "point-1"})  # fmt: skip
                  for i, e in enumerate(energies)]
    single = log_run(client, experiment, "workload.batch_size=4",
                     {ENERGY: 0.100, ENERGY_LOW: 0.095, ENERGY_HIGH: 0.105}, tags={names.TAG_POINT_HASH: "point-4"})
    selection = choose(client)
    candidates = by_name(selection)
    grouped, alone = candidates["workload.batch_size=1 (3 replicates)"], candidates["workload.batch_size=4"]
    # 0.09 is the cheapest run, but its configuration costs 0.11 on average: 0.10 wins.
    assert selection.chosen is alone and selection.chosen.run.info.run_id == single.info.run_id
    assert {r.info.run_id for r in grouped.runs} == {r.info.run_id for r in replicates}
    assert grouped.metric(ENERGY) == pytest.approx(0.110)
    # The interval is the spread between the replicates (their own, narrow ones are left out).
    expected = positive_interval(energies, value=0.110)
    assert expected is not None and expected.high - expected.low > 0.02 * 0.13
    assert (grouped.interval(ENERGY).low, grouped.interval(ENERGY).high) == (pytest.approx(expected.low),
                                                                             pytest.approx(expected.high))  # fmt: skip
    assert grouped.figures.covers == "3 replicates"
    assert (alone.interval(ENERGY).low, alone.interval(ENERGY).high) == (pytest.approx(0.095), pytest.approx(0.105))
    assert alone.figures.covers == "one run's windows"


def test_a_point_is_one_configuration_per_hardware_class_and_a_run_without_point_hash_stands_alone(
    client, experiment
) -> None:
    h100, a100 = {names.TAG_GPU_MODEL: "H100"}, {names.TAG_GPU_MODEL: "A100"}
    for i in range(2):
        log_run(client, experiment, f"p #{i + 1}/2", {ENERGY: 0.1}, tags={names.TAG_POINT_HASH: "p", **h100})
    log_run(client, experiment, "p on A100", {ENERGY: 0.1}, tags={names.TAG_POINT_HASH: "p", **a100})
    log_run(client, experiment, "old run 1", {ENERGY: 0.1})
    log_run(client, experiment, "old run 2", {ENERGY: 0.1})
    groups = {c.name: (len(c.runs), hardware_class(c.run)) for c in choose(client).candidates}
    assert groups == {"p (2 replicates)": (2, "gpu:H100"), "p on A100": (1, "gpu:A100"),
                      "old run 1": (1, f"cpu:{CPU}"), "old run 2": (1, f"cpu:{CPU}")}  # fmt: skip


def test_hardware_class_is_the_gpu_model_else_the_cpu_model() -> None:
    def run(tags: dict[str, str]) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(tags=tags))

    assert hardware_class(run({names.TAG_GPU_MODEL: "H100", names.TAG_CPU_MODEL: CPU})) == "gpu:H100"
    assert hardware_class(run({names.TAG_GPU_MODEL: "", names.TAG_CPU_MODEL: CPU})) == f"cpu:{CPU}"
    assert hardware_class(run({})) == "cpu:unknown"


def test_random_weights_are_never_chosen(client, experiment) -> None:
    log_run(client, experiment, "random", {ENERGY: 0.01}, params={names.PARAM_MODEL_WEIGHTS: "random"})
    log_run(client, experiment, "trained", {ENERGY: 0.20})
    selection = choose(client)
    assert selection.chosen.name == "trained"
    assert (by_name(selection)["random"].kept, by_name(selection)["random"].reason) == (
        False, "random weights: nothing to deploy")  # fmt: skip


def test_only_random_weights_is_a_refusal_that_says_why(client, experiment) -> None:
    for name in ("a", "b"):
        log_run(client, experiment, name, {ENERGY: 0.1}, params={names.PARAM_MODEL_WEIGHTS: "random"})
    assert refusal(client) == ("none of the 2 runs meets the constraints (random weights: nothing to deploy); "
                               "relax them or measure more configurations.")  # fmt: skip


@pytest.fixture
def four_configurations(client, experiment) -> MlflowClient:
    """cheap: best energy, poor perplexity; slow: good perplexity, slow; fast: fastest, no
    perplexity logged; good: meets everything, the dearest."""
    log_run(client, experiment, "cheap", {ENERGY: 0.05, PERPLEXITY: 20.0, SPEED: 100.0})
    log_run(client, experiment, "slow", {ENERGY: 0.08, PERPLEXITY: 10.0, SPEED: 50.0})
    log_run(client, experiment, "fast", {ENERGY: 0.07, SPEED: 300.0})
    log_run(client, experiment, "good", {ENERGY: 0.09, PERPLEXITY: 12.0, SPEED: 200.0})
    return client


def test_constraints_keep_only_configurations_that_meet_every_one(four_configurations) -> None:
    constraints = (Constraint(PERPLEXITY, 12.0, "max"), Constraint(SPEED, 60.0, "min"))
    selection = choose(four_configurations, constraints=constraints)
    assert {c.name: (c.kept, c.reason) for c in selection.candidates} == {
        "cheap": (False, f"{PERPLEXITY} 20 > 12"),
        "slow": (False, f"{SPEED} 50 < 60"),
        "fast": (False, f"{PERPLEXITY} not logged"),
        "good": (True, "meets every constraint"),  # a bound is inclusive: perplexity 12 is at most 12
    }
    assert selection.chosen.name == "good"


def test_no_configuration_meeting_the_constraints_is_a_refusal_listing_the_reasons(four_configurations) -> None:
    constraints = (Constraint(PERPLEXITY, 9.0, "max"), Constraint(SPEED, 60.0, "min"))
    # Each configuration's reasons joined by "; " (slow breaks both), the distinct reasons by ", ".
    assert refusal(four_configurations, constraints=constraints) == (
        f"none of the 4 runs meets the constraints ({PERPLEXITY} 10 > 9; {SPEED} 50 < 60, {PERPLEXITY} 12 > 9, "
        f"{PERPLEXITY} 20 > 9, {PERPLEXITY} not logged); relax them or measure more configurations."
    )


def test_a_metric_no_run_logged_is_a_refusal_before_any_judgement(four_configurations) -> None:
    advice = f"pick one such as {ENERGY} or {SPEED}."
    assert refusal(four_configurations, metric="energy/none") == f"no run logged the metric 'energy/none'; {advice}"
    constraint = Constraint(names.GPU_PEAK_MB, 100.0, "max")
    assert refusal(four_configurations, constraints=(constraint,)) == (
        f"no run logged the metric '{names.GPU_PEAK_MB}'; {advice}")  # fmt: skip


def test_the_direction_decides_which_end_wins(four_configurations) -> None:
    assert choose(four_configurations, metric=SPEED, direction="max").chosen.name == "fast"
    assert choose(four_configurations, metric=SPEED, direction="min").chosen.name == "slow"
    assert choose(four_configurations, metric=ENERGY, direction="max").chosen.name == "good"
    # A configuration without the selected metric is judged, and left out, not dropped silently.
    by_perplexity = choose(four_configurations, metric=PERPLEXITY)
    assert by_perplexity.chosen.name == "slow"
    assert (by_name(by_perplexity)["fast"].kept, by_name(by_perplexity)["fast"].reason) == (
        False, f"{PERPLEXITY} not logged")  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "direction"),
    [(ENERGY, "min"), (PERPLEXITY, "min"), (names.TTFT_P50, "min"), (SPEED, "max"),
     ("efficiency/tokens_per_kwh", "max")],  # fmt: skip
)
def test_the_default_direction_follows_the_section(metric: str, direction: str) -> None:
    assert default_direction(metric) == direction


def test_a_tie_on_the_selected_metric_goes_to_the_fastest_on_the_pareto_front(client, experiment) -> None:
    # Equal perplexity (within rounding) for all but "best": it is cheaper and faster, yet
    # worse on the selected metric, so it takes no part in the tie.
    log_run(client, experiment, "best", {PERPLEXITY: 11.0, ENERGY: 0.01, SPEED: 900.0})
    log_run(client, experiment, "cheapest", {PERPLEXITY: 10.0, ENERGY: 0.08, SPEED: 90.0})
    log_run(client, experiment, "fastest", {PERPLEXITY: 10.0 * (1 + 1e-12), ENERGY: 0.10, SPEED: 100.0})
    log_run(client, experiment, "dominated", {PERPLEXITY: 10.0, ENERGY: 0.12, SPEED: 80.0})
    assert choose(client, metric=PERPLEXITY).chosen.name == "fastest"


def test_among_equally_fast_tied_configurations_the_pareto_front_wins() -> None:
    """Speed alone cannot tell these two apart; the front can (same speed, less energy)."""

    def candidate(name: str, energy: float) -> Candidate:
        info, data = SimpleNamespace(run_id=name, run_name=name), SimpleNamespace(tags={}, params={})
        run = SimpleNamespace(info=info, data=data)
        return Candidate([run], Figures({PERPLEXITY: 10.0, ENERGY: energy, SPEED: 100.0}, {}, 1), True, "")

    dear, cheap = candidate("dear", 0.12), candidate("cheap", 0.10)
    assert _best([dear, cheap], PERPLEXITY, "min") is cheap
    assert _best([cheap, dear], PERPLEXITY, "min") is cheap


def test_the_decision_says_first_when_other_configurations_cannot_be_told_apart() -> None:
    def candidate(name: str, low: float, value: float, high: float, kept: bool = True) -> Candidate:
        run = SimpleNamespace(info=SimpleNamespace(run_id=f"id-{name}", run_name=name))
        return Candidate([run], Figures({ENERGY: value}, {ENERGY: Interval(value, low, high, 3)}, 1), kept, "")

    best, close, far, refused = (candidate("a", 0.09, 0.10, 0.11), candidate("b", 0.10, 0.105, 0.12),
                                 candidate("c", 0.2, 0.21, 0.22), candidate("d", 0.09, 0.1, 0.11, kept=False))
    selection = Selection([best, close, far, refused], best, ENERGY, "min")
    assert selection.decision() == (f"2 qualifying configurations cannot be told apart on {ENERGY} (their 95% "
                                    "intervals overlap: b); chosen for the min value: a (run id-a)")  # fmt: skip
    assert Selection([best, far], best, ENERGY, "min").decision() == "Chosen: a (run id-a)"


def test_a_sweep_selects_among_its_own_children_never_its_parent(client, experiment) -> None:
    sweep = {names.TAG_SWEEP_ID: "sweep-1"}
    log_run(client, experiment, "parent", {ENERGY: 0.001}, tags={**sweep, names.TAG_SWEEP_PARENT: "true"})
    log_run(client, experiment, "child", {ENERGY: 0.2}, tags=sweep)
    log_run(client, experiment, "other sweep", {ENERGY: 0.1}, tags={names.TAG_SWEEP_ID: "sweep-2"})
    log_run(client, experiment, "no sweep", {ENERGY: 0.15})
    assert [c.name for c in choose(client, sweep="sweep-1").candidates] == ["child"]
    everything = choose(client)
    assert sorted(c.name for c in everything.candidates) == ["child", "no sweep", "other sweep"]
    assert everything.chosen.name == "other sweep"


def test_only_finished_measurements_are_candidates(client, experiment) -> None:
    log_run(client, experiment, "run failed", {ENERGY: 0.01}, status=names.RUN_FAILED)
    log_run(client, experiment, "measurement failed", {ENERGY: 0.02}, tags={names.TAG_STATUS: "failed"})
    log_run(client, experiment, "no status", {ENERGY: 0.03}, tags={names.TAG_STATUS: None})
    log_run(client, experiment, "finished", {ENERGY: 0.5})
    assert [c.name for c in choose(client).candidates] == ["finished"]


def test_nothing_to_select_from_is_a_refusal_naming_where_it_looked(client, experiment) -> None:
    assert refusal(client) == (f"experiment '{EXPERIMENT}' has no FINISHED measurement run; "
                               "check --experiment and --sweep.")  # fmt: skip
    log_run(client, experiment, "finished", {ENERGY: 0.5}, tags={names.TAG_SWEEP_ID: "sweep-1"})
    assert refusal(client, sweep="sweep-2") == (f"sweep 'sweep-2' of experiment '{EXPERIMENT}' has no FINISHED "
                                                "measurement run; check --experiment and --sweep.")  # fmt: skip
    with pytest.raises(RegistryError, match=r"^there is no experiment named 'nope'; check --experiment\.$"):
        select(client, "nope", None, ENERGY, "min", [])


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("quality/perplexity=12", Constraint(PERPLEXITY, 12.0, "max")), ("a=b=1e-3", Constraint("a=b", 0.001, "max"))],
)
def test_a_constraint_reads_metric_equals_number(text: str, parsed: Constraint) -> None:
    assert Constraint.parse(text, "max") == parsed


@pytest.mark.parametrize("text", ["quality/perplexity", "=12", "quality/perplexity=low", "quality/perplexity="])
def test_a_constraint_that_does_not_read_metric_equals_number_is_refused(text: str) -> None:
    with pytest.raises(RegistryError) as refused:
        Constraint.parse(text, "min")
    assert str(refused.value) == f"--min {text!r} must read METRIC=NUMBER, e.g. quality/perplexity=12."


# --- what a version records ----------------------------------------------------------------


@pytest.fixture
def replicated_choice(client, experiment) -> Selection:
    """Three replicates of one point chosen over a single dearer run, with the evidence logged."""
    for i, (energy, speed) in enumerate([(0.09, 110.0), (0.11, 100.0), (0.13, 90.0)]):
        log_run(client, experiment, f"workload.batch_size=4 #{i + 1}/3", {ENERGY: energy, SPEED: speed},
                params={names.PARAM_MODEL_DTYPE: "bfloat16", names.PARAM_RESOLVED_DEVICE: "cpu"},
                tags={names.TAG_POINT_HASH: "p4", names.TAG_SOURCE_PREFIX + "cpu": "estimate:cpu_load"})  # fmt: skip
    log_run(client, experiment, "workload.batch_size=1", {ENERGY: 0.3, SPEED: 20.0}, tags={names.TAG_POINT_HASH: "p1"})
    return choose(client)


def test_version_tags_carry_the_replicates_mean_interval_and_every_source_run(replicated_choice: Selection) -> None:
    chosen = replicated_choice.chosen
    interval = chosen.interval(ENERGY)
    tags = version_tags(replicated_choice)
    assert tags == {
        "energy.j_per_token": "0.11",
        "throughput.tokens_per_s": "100",
        names.VERSION_HARDWARE: f"cpu:{CPU}",
        names.VERSION_SOURCE_RUN: chosen.run.info.run_id,
        names.VERSION_SOURCE_RUNS: " ".join(r.info.run_id for r in chosen.runs),
        names.VERSION_SELECTED_BY: f"min {ENERGY}",
        names.VERSION_SELECTED_VALUE: "0.11",
        names.VERSION_SELECTED_LOW: f"{interval.low:.6g}",
        names.VERSION_SELECTED_HIGH: f"{interval.high:.6g}",
        names.VERSION_SELECTED_COVERS: "3 replicates",
        names.PARAM_MODEL_NAME: "tiny-stories",
        names.PARAM_MODEL_DTYPE: "bfloat16",
        names.PARAM_BATCH_SIZE: "4",
        names.PARAM_RESOLVED_DEVICE: "cpu",
    }
    assert len(tags[names.VERSION_SOURCE_RUNS].split()) == 3


def test_the_energy_card_names_the_runs_behind_its_figures(replicated_choice: Selection) -> None:
    chosen = replicated_choice.chosen
    card = energy_card(replicated_choice, reference=False)
    assert card.startswith("# Energy card: tiny-stories\n")
    assert f"among 2 qualifying\nconfigurations (of 2); source run `{chosen.run.info.run_id}`" in card
    assert "The figures are the mean of\n3 run(s) (" + ", ".join(f"`{r.info.run_id}`" for r in chosen.runs) in card
    interval = chosen.interval(ENERGY)
    assert f"`{ENERGY}`\n0.11 [{interval.low:.4g}-{interval.high:.4g}] (95% interval from 3 replicates)." in card
    assert "| throughput | 100 tokens/s |" in card and "| perplexity (held-out text) | not measured |" in card
    assert f"**Measured on** cpu:{CPU} (cpu), dtype bfloat16" in card and "CPU from `estimate:cpu_load`" in card
    assert card.rstrip().endswith("The exact weights are stored with this version.")
    assert energy_card(replicated_choice, reference=True).rstrip().endswith(
        "Weights are referenced by hub id and revision, not copied.")  # fmt: skip


# --- the champion alias ----------------------------------------------------------------------


def selection(value: float, interval: tuple[float, float] | None, runs: int = 1, metric: str = ENERGY,
              direction: str = "min", hardware: dict[str, str] | None = None) -> Selection:  # fmt: skip
    """A chosen configuration of ``runs`` replicates, measured on the test CPU unless ``hardware``
    tags say otherwise."""
    tags = hardware or {names.TAG_CPU_MODEL: CPU}
    run = SimpleNamespace(info=SimpleNamespace(run_id="challenger-run", run_name="workload.batch_size=4 #1/3"),
                          data=SimpleNamespace(tags=tags, params={}, metrics={}))  # fmt: skip
    intervals = {metric: Interval(value, *interval, runs)} if interval else {}
    chosen = Candidate([run] * runs, Figures({metric: value}, intervals, runs), True, "meets every constraint")
    return Selection([chosen], chosen, metric, direction)


@pytest.fixture
def registry(client: MlflowClient) -> MlflowClient:
    client.create_registered_model(MODEL)
    return client


def new_version(client: MlflowClient, tmp_path: Path, chosen: Selection) -> str:
    return str(client.create_model_version(MODEL, str(tmp_path), tags=version_tags(chosen)).version)


def crown(client: MlflowClient, tmp_path: Path, chosen: Selection, drop: tuple[str, ...] = ()) -> str:
    """A champion registered from ``chosen`` (without the tags in ``drop``, as older versions were)."""
    tags = {k: v for k, v in version_tags(chosen).items() if k not in drop}
    version = str(client.create_model_version(MODEL, str(tmp_path), tags=tags).version)
    client.set_registered_model_alias(MODEL, ALIAS, version)
    return version


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(MODEL, ALIAS).version)


def test_version_tags_carry_the_interval_and_what_it_covers() -> None:
    tags = version_tags(selection(0.1, (0.09, 0.11), runs=3))
    assert (tags["selected_value"], tags["selected_ci95_low"], tags["selected_ci95_high"]) == ("0.1", "0.09", "0.11")
    assert tags["selected_interval"] == "3 replicates" and tags["hardware"] == "cpu:Test CPU"
    assert "selected_ci95_low" not in version_tags(selection(0.1, None))


def test_the_first_version_becomes_the_champion(registry, tmp_path: Path) -> None:
    first = selection(0.1, (0.09, 0.11))
    version = new_version(registry, tmp_path, first)
    assert decide_alias(registry, MODEL, ALIAS, version, first) == (
        True, f"@{ALIAS} now points to version {version} (first champion).", None)  # fmt: skip
    assert champion(registry) == version


def test_a_champion_measured_on_other_hardware_is_never_compared(registry, tmp_path: Path) -> None:
    old = crown(registry, tmp_path, selection(0.100, (0.095, 0.105)))
    on_gpu = selection(0.010, (0.009, 0.011), hardware={names.TAG_GPU_MODEL: "H100", names.TAG_CPU_MODEL: CPU})
    version = new_version(registry, tmp_path, on_gpu)
    moved, message, previous = decide_alias(registry, MODEL, ALIAS, version, on_gpu, allow_overlap=True)
    assert (moved, str(previous), champion(registry)) == (False, old, old)
    assert message == (f"@{ALIAS} stays on version {old}: it was measured on cpu:{CPU}, version {version} on gpu:H100; "
                       "figures from different hardware do not compare.")  # fmt: skip


def test_a_champion_chosen_by_another_metric_is_never_compared(registry, tmp_path: Path) -> None:
    old = crown(registry, tmp_path, selection(0.100, (0.095, 0.105)))
    by_speed = selection(500.0, (490.0, 510.0), metric=SPEED, direction="max")
    version = new_version(registry, tmp_path, by_speed)
    moved, message, previous = decide_alias(registry, MODEL, ALIAS, version, by_speed)
    assert (moved, str(previous), champion(registry)) == (False, old, old)
    assert message == f"@{ALIAS} stays on version {old}: it was chosen by min {ENERGY}, not max {SPEED}."


def test_an_overlapping_challenger_moves_the_alias_only_with_allow_overlap(registry, tmp_path: Path) -> None:
    old = crown(registry, tmp_path, selection(0.100, (0.095, 0.105)))
    challenger = selection(0.098, (0.093, 0.103))
    version = new_version(registry, tmp_path, challenger)
    moved, message, previous = decide_alias(registry, MODEL, ALIAS, version, challenger)
    assert not moved and str(previous) == old and champion(registry) == old
    assert message == (f"@{ALIAS} stays on version {old}: {ENERGY} 0.098 [0.093-0.103] (version {version}) is not "
                       f"better than 0.1 [0.095-0.105] (version {old}) beyond both 95% intervals (allow-overlap would "
                       f"compare the values) (version {version} is registered for the record).")  # fmt: skip

    moved, message, _ = decide_alias(registry, MODEL, ALIAS, version, challenger, allow_overlap=True)
    assert moved and champion(registry) == version and "by value (allow-overlap" in message
    assert message.startswith(f"@{ALIAS} moved from version {old} to {version}: ")


def test_a_challenger_better_beyond_both_intervals_takes_the_alias(registry, tmp_path: Path) -> None:
    crown(registry, tmp_path, selection(0.100, (0.095, 0.105)))
    challenger = selection(0.080, (0.075, 0.085))
    version = new_version(registry, tmp_path, challenger)
    moved, message, _ = decide_alias(registry, MODEL, ALIAS, version, challenger)
    assert moved and champion(registry) == version
    assert "is better than" in message and "beyond both 95% intervals" in message


def test_a_champion_without_an_interval_is_compared_by_value_and_the_message_says_so(registry, tmp_path) -> None:
    old = crown(registry, tmp_path, selection(0.100, (0.095, 0.105)), drop=("selected_ci95_low", "selected_ci95_high"))
    challenger = selection(0.099, (0.090, 0.108))  # overlapping, yet better by value
    version = new_version(registry, tmp_path, challenger)
    moved, message, _ = decide_alias(registry, MODEL, ALIAS, version, challenger)
    assert moved and champion(registry) == version
    assert f"by value, as version {old} has no 95% interval" in message


def test_a_worse_challenger_without_an_interval_leaves_the_alias(registry, tmp_path: Path) -> None:
    old = crown(registry, tmp_path, selection(0.100, None))
    challenger = selection(0.101, None)
    version = new_version(registry, tmp_path, challenger)
    moved, message, _ = decide_alias(registry, MODEL, ALIAS, version, challenger, allow_overlap=True)
    assert not moved and champion(registry) == old
    assert f"is not better than 0.1 (version {old}) by value, as version {old} and version {version} have no 95% " \
           "interval" in message  # fmt: skip


@pytest.mark.parametrize(
    ("direction", "challenger", "champion", "wins"),
    [
        ("min", (0.08, 0.07, 0.09), (0.10, 0.095, 0.105), True),
        ("min", (0.09, 0.08, 0.097), (0.10, 0.095, 0.105), False),  # touches the champion's interval
        ("max", (120.0, 111.0, 130.0), (100.0, 90.0, 110.0), True),
        ("max", (120.0, 105.0, 130.0), (100.0, 90.0, 110.0), False),
        ("max", (90.0, 85.0, 95.0), (100.0, 90.0, 110.0), False),  # worse
    ],
)
def test_better_beyond_both_intervals_in_either_direction(direction, challenger, champion, wins) -> None:
    new = Contender("2", challenger[0], Interval(*challenger, 3))
    old = Contender("1", champion[0], Interval(*champion, 3))
    assert challenger_wins("m", direction, new, old, allow_overlap=False)[0] is wins
    # With allow_overlap only the values count.
    by_value = new.value < old.value if direction == "min" else new.value > old.value
    assert challenger_wins("m", direction, new, old, allow_overlap=True)[0] is by_value
