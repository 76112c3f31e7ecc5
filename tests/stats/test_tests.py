"""Two-sample tests: the same statistic and p-value as SciPy, NaN dropped, bad input refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import TestResult, chi2_test, compare_samples, ks_test

EXACT = 1e-12


@pytest.mark.parametrize(
    ("n_reference", "n_current"),
    [(50, 80), (1_000, 1_000), (3_000, 2_999), (10_000, 20_000), (50_000, 40_000)],
)
def test_ks_test_matches_scipy_ks_2samp(n_reference: int, n_current: int) -> None:
    rng = np.random.default_rng(n_reference + n_current)
    reference = rng.normal(size=n_reference)
    current = rng.normal(0.05, 1.1, size=n_current)
    expected = stats.ks_2samp(reference, current, method="auto")
    result = ks_test(reference, current)
    assert isinstance(result, TestResult)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT)


def test_ks_test_on_tied_discrete_values_matches_scipy() -> None:
    reference = [0, 0, 1, 1, 1, 2, 2, 3]
    current = [1, 1, 2, 2, 2, 3, 3, 3, 4]
    expected = stats.ks_2samp(reference, current)
    result = ks_test(reference, current)
    assert (result.statistic, result.p_value) == pytest.approx(
        (expected.statistic, expected.pvalue), rel=EXACT
    )


def test_ks_test_drops_nan_before_testing() -> None:
    reference = [0.1, np.nan, 0.5, 0.9, 1.3]
    current = [np.nan, 0.2, 2.0, 2.5]
    clean = stats.ks_2samp([0.1, 0.5, 0.9, 1.3], [0.2, 2.0, 2.5])
    result = ks_test(reference, current)
    assert result.statistic == pytest.approx(clean.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(clean.pvalue, rel=EXACT)


def test_ks_test_on_identical_samples_finds_no_difference() -> None:
    values = np.arange(100.0)
    assert ks_test(values, values) == TestResult(statistic=0.0, p_value=1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
)
def test_ks_statistic_and_p_value_are_in_unit_interval(
    reference: list[float], current: list[float]
) -> None:
    result = ks_test(reference, current)
    assert 0.0 <= result.statistic <= 1.0
    assert 0.0 <= result.p_value <= 1.0


@pytest.mark.parametrize(
    ("reference", "current", "message"),
    [
        ([], [1.0], "reference is empty"),
        ([1.0], [np.nan, np.nan], "current holds only NaN"),
        ([[1.0, 2.0]], [1.0], "one-dimensional"),
        (["a", "b"], [1.0], "must hold numbers"),
    ],
)
def test_ks_test_refuses_samples_without_numbers(
    reference: Any, current: Any, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        ks_test(reference, current)


def test_chi2_test_matches_scipy_chi2_contingency() -> None:
    reference = np.array([120, 340, 95, 60])
    current = np.array([100, 310, 130, 42])
    expected = stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    result = chi2_test(reference, current)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT)


def test_chi2_test_with_two_categories_applies_no_continuity_correction() -> None:
    expected = stats.chi2_contingency([[30, 70], [45, 55]], correction=False)
    result = chi2_test([30, 70], [45, 55])
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT)


def test_chi2_test_drops_categories_empty_on_both_sides() -> None:
    expected = stats.chi2_contingency([[10, 20, 30], [12, 18, 40]], correction=False)
    result = chi2_test([10, 0, 20, 30, 0], [12, 0, 18, 40, 0])
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT)


def test_chi2_test_detects_a_category_new_in_the_current_sample() -> None:
    result = chi2_test([500, 500, 0], [450, 450, 100])
    expected = stats.chi2_contingency([[500, 500, 0], [450, 450, 100]], correction=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value < 1e-20


def test_chi2_test_with_a_single_category_left_finds_no_difference() -> None:
    assert chi2_test([40, 0], [7, 0]) == TestResult(statistic=0.0, p_value=1.0)


@pytest.mark.parametrize(
    ("reference", "current", "message"),
    [
        ([1, 2, 3], [1, 2], "3 bins but current_counts has 2"),
        ([1, -2, 3], [1, 2, 3], "negative counts at positions \\[1\\]"),
        ([1, np.nan], [1, 2], "NaN or infinite"),
        ([], [], "reference_counts is empty"),
        ([0, 0], [1, 2], "reference_counts counts sum to 0"),
    ],
)
def test_chi2_test_refuses_bad_counts(reference: Any, current: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        chi2_test(reference, current)


@pytest.mark.parametrize(("n", "m"), [(50, 80), (3_000, 2_000), (30_000, 20_000)])
def test_compare_samples_equals_scipys_ks_and_wasserstein(n: int, m: int) -> None:
    from scipy.stats import ks_2samp, wasserstein_distance

    rng = np.random.default_rng(n)
    a, b = rng.normal(0, 1, n), rng.normal(0.05, 1.1, m)
    a[:3] = np.nan  # dropped, like everywhere else
    compared = compare_samples(a, b)
    expected = ks_2samp(a[3:], b, method="auto")
    assert compared.ks.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert compared.ks.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert compared.wasserstein == pytest.approx(wasserstein_distance(a[3:], b), rel=1e-9)
