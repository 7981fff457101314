import math

import pytest

from mlflow_energy.bench.stats import Interval, describe, percentile, positive_interval, t975


def test_describe_matches_hand_computation() -> None:
    s = describe([1.0, 2.0, 3.0, 4.0])
    std = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 3)
    assert s.n == 4 and s.mean == 2.5
    assert s.std == pytest.approx(std)
    half = 3.182446 * std / 2  # t(0.975, 3 dof) * std / sqrt(4)
    assert (s.ci95_low, s.ci95_high) == (pytest.approx(2.5 - half), pytest.approx(2.5 + half))
    assert s.cv == pytest.approx(std / 2.5)


def test_single_sample_has_no_spread() -> None:
    s = describe([7.0])
    assert s.mean == 7.0 and s.std is None and s.ci95_low is None and s.cv is None


def test_t_quantiles_are_exact_for_any_degrees_of_freedom() -> None:
    from scipy.stats import t

    # Published table values; beyond 30 the quantile is not yet the normal 1.96 (2.040 at 31).
    table = {1: 12.706, 2: 4.303, 10: 2.228, 30: 2.042, 31: 2.040, 60: 2.000, 120: 1.980, 100000: 1.960}
    for dof, quantile in table.items():
        assert t975(dof) == pytest.approx(quantile, abs=5e-4)
    for dof in [*range(1, 301), 1000, 10**4, 10**6]:
        assert t975(dof) == pytest.approx(t.ppf(0.975, dof), rel=1e-9), dof
    with pytest.raises(ValueError):
        t975(0)


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_positive_interval_never_reaches_zero_even_for_wild_samples() -> None:
    noisy = [0.01, 1.5, 0.3]  # the arithmetic t-interval of these crosses zero
    arithmetic = describe(noisy)
    assert arithmetic.ci95_low < 0
    interval = positive_interval(noisy)
    assert 0 < interval.low < interval.value < interval.high


def test_positive_interval_of_quiet_samples_is_tight_and_centred_on_the_given_value() -> None:
    quiet = [1.00, 1.01, 0.99, 1.00, 1.005]
    interval = positive_interval(quiet, value=1.001)
    assert interval.value == 1.001 and interval.n == 5
    assert interval.relative_half_width < 0.02
    # Multiplicative: value / f and value * f.
    assert interval.low * interval.high == pytest.approx(1.001**2)


def test_one_outlier_widens_the_interval() -> None:
    steady = [1.0, 1.01, 0.99, 1.0, 1.0, 1.01]
    assert positive_interval([*steady, 1.5]).relative_half_width > 5 * positive_interval(steady).relative_half_width


def test_equal_samples_give_a_zero_width_interval_and_too_few_give_none() -> None:
    interval = positive_interval([2.0, 2.0, 2.0])
    assert interval.low == interval.high == interval.value == pytest.approx(2.0)
    assert interval.relative_half_width == pytest.approx(0.0)
    assert positive_interval([2.0]) is None
    assert positive_interval([2.0, 3.0]) is None  # two samples are too few for a meaningful interval
    assert describe([2.0, 3.0]).ci95_low is None and describe([2.0, 3.0]).std is not None
    assert positive_interval([2.0, -1.0]) is None  # not a positive quantity: no log-scale interval


def test_overlap_is_the_indistinguishable_test() -> None:
    a, b, c = Interval(1.0, 0.9, 1.1, 3), Interval(1.15, 1.05, 1.25, 3), Interval(1.3, 1.2, 1.4, 3)
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c)
