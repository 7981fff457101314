import math

import pytest

from mlflow_energy.bench.stats import describe, percentile, t975


def test_describe_matches_hand_computation() -> None:
    s = describe([1.0, 2.0, 3.0, 4.0])
    std = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)
    assert s.n == 4 and s.mean == 2.5
    assert s.std == pytest.approx(std)
    half = 3.182 * std / 2  # t(0.975, 3 dof) * std / sqrt(4)
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    assert s.cv == pytest.approx(std / 2.5)


def test_single_sample_has_no_spread() -> None:
    s = describe([7.0])
    assert s.mean == 7.0 and s.std is None and s.ci95_low is None and s.cv is None


def test_t_quantiles_fall_back_to_normal_for_many_samples() -> None:
    assert t975(1) == 12.706 and t975(30) == 2.042 and t975(500) == 1.96
    with pytest.raises(ValueError):
        t975(0)


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    with pytest.raises(ValueError):
        percentile([], 50)
