"""The champion alias rule: a challenger must be better beyond both 95% intervals, or better in
value with allow_overlap; a champion without an interval is compared by value, and says so.
Decided against a real SQLite model registry."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from mlflow_energy.bench.stats import Interval
from mlflow_energy.report.replicates import Figures
from mlflow_energy.tracking.registry import (
    Candidate,
    Contender,
    Selection,
    challenger_wins,
    decide_alias,
    version_tags,
)

ENERGY = "energy/j_per_token"
MODEL, ALIAS = "tiny-chat", "efficient"


def selection(value: float, interval: tuple[float, float] | None, runs: int = 1) -> Selection:
    """A chosen configuration of ``runs`` replicates measured on the same CPU."""
    run = SimpleNamespace(info=SimpleNamespace(run_id="challenger-run", run_name="workload.batch_size=4 #1/3"),
                          data=SimpleNamespace(tags={"mlflow_energy.cpu_model": "Test CPU"}, params={},
                                               metrics={}))  # fmt: skip
    intervals = {ENERGY: Interval(value, *interval, runs)} if interval else {}
    chosen = Candidate([run] * runs, Figures({ENERGY: value}, intervals, runs), True, "meets every constraint")
    return Selection([chosen], chosen, ENERGY, "min")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> MlflowClient:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}")
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


def test_an_overlapping_challenger_moves_the_alias_only_with_allow_overlap(registry, tmp_path: Path) -> None:
    old = crown(registry, tmp_path, selection(0.100, (0.095, 0.105)))
    challenger = selection(0.098, (0.093, 0.103))
    version = new_version(registry, tmp_path, challenger)
    moved, message, previous = decide_alias(registry, MODEL, ALIAS, version, challenger)
    assert not moved and str(previous) == old and champion(registry) == old
    assert "0.098 [0.093-0.103]" in message and "0.1 [0.095-0.105]" in message
    assert "is not better" in message and "beyond both 95% intervals" in message

    moved, message, _ = decide_alias(registry, MODEL, ALIAS, version, challenger, allow_overlap=True)
    assert moved and champion(registry) == version and "by value (allow-overlap" in message


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
