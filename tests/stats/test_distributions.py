"""Binning against a reference and distances between distributions, checked against SciPy."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelyard.errors import InvalidInput
from modelyard.stats import (
    bin_counts,
    jensen_shannon,
    normalized_wasserstein,
    psi,
    quantile_edges,
    spread,
    wasserstein,
)

EXACT = 1e-12

samples = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=80)
count_vectors = st.integers(1, 12).flatmap(
    lambda k: st.tuples(
        st.lists(st.integers(0, 1_000), min_size=k, max_size=k).filter(any),
        st.lists(st.integers(0, 1_000), min_size=k, max_size=k).filter(any),
    )
)


def test_quantile_edges_split_a_continuous_reference_into_equal_bins() -> None:
    reference = np.random.default_rng(0).normal(size=10_000)
    edges = quantile_edges(reference, bins=10)
    assert edges.size == 11
    assert edges[0] == -np.inf
    assert edges[-1] == np.inf
    assert bin_counts(reference, edges).tolist() == [1_000] * 10


def test_quantile_edges_give_fewer_bins_to_few_distinct_values() -> None:
    assert quantile_edges([0, 1] * 50).tolist() == [-np.inf, 0.0, np.inf]
    assert quantile_edges([7.0] * 20).tolist() == [-np.inf, np.inf]
    edges = quantile_edges([1, 2, 2, 3, np.nan], bins=10)
    assert edges.tolist() == [-np.inf, 1.0, 2.0, np.inf]
    assert bin_counts([1, 2, 2, 3], edges).tolist() == [1, 2, 1]


@settings(max_examples=100, deadline=None)
@given(samples, samples, st.integers(1, 20))
def test_quantile_edges_put_every_value_in_exactly_one_bin(
    reference: list[float], current: list[float], bins: int
) -> None:
    edges = quantile_edges(reference, bins)
    assert np.all(np.diff(edges) > 0)
    assert 2 <= edges.size <= bins + 1
    assert edges.size - 1 <= len(set(reference))
    assert bin_counts(current, edges).sum() == len(current)
    assert np.all(bin_counts(reference, edges) > 0)


def test_bin_counts_use_right_closed_bins_and_ignore_nan_and_outliers() -> None:
    edges = [0.0, 1.0, 2.0]
    values = [0.0, 0.5, 1.0, 1.5, 2.0, np.nan, -1.0, 3.0]
    assert bin_counts(values, edges).tolist() == [3, 2]
    assert bin_counts([-np.inf, np.inf], [-np.inf, 0.0, np.inf]).tolist() == [1, 1]
    assert bin_counts([], edges).tolist() == [0, 0]


@pytest.mark.parametrize("edges", [[1.0], [0.0, 0.0], [2.0, 1.0], [0.0, np.nan, 1.0]])
def test_bin_counts_refuse_edges_that_are_not_increasing(edges: list[float]) -> None:
    with pytest.raises(InvalidInput, match="strictly increasing"):
        bin_counts([1.0], edges)


def test_psi_follows_its_definition() -> None:
    reference = np.array([25.0, 25.0, 25.0, 25.0])
    current = np.array([10.0, 20.0, 30.0, 40.0])
    r, c = reference / 100, current / 100
    assert psi(reference, current) == pytest.approx(float(np.sum((c - r) * np.log(c / r))), EXACT)


def test_psi_replaces_empty_bins_with_epsilon() -> None:
    r = np.array([0.5, 0.5, 1e-4])
    c = np.array([0.4, 0.4, 0.2])
    expected = float(np.sum((c - r) * np.log(c / r)))
    assert psi([50, 50, 0], [40, 40, 20]) == pytest.approx(expected, rel=EXACT)
    assert psi([50, 50, 0], [40, 40, 20], epsilon=1e-2) < expected


def test_psi_reads_stable_moderate_and_large_shifts() -> None:
    reference = [100] * 10
    assert psi(reference, [100] * 10) == 0.0
    assert psi(reference, [95, 105] * 5) < 0.1
    assert 0.1 < psi(reference, [60] * 5 + [140] * 5) < 0.25
    assert psi(reference, [10] * 5 + [190] * 5) > 0.25


@settings(max_examples=100, deadline=None)
@given(count_vectors)
def test_psi_and_jensen_shannon_are_non_negative_and_zero_on_identical_counts(
    pair: tuple[list[int], list[int]],
) -> None:
    reference, current = pair
    assert psi(reference, current) >= 0.0
    assert 0.0 <= jensen_shannon(reference, current) <= 1.0
    assert psi(reference, reference) == 0.0
    assert jensen_shannon(reference, [3 * count for count in reference]) == 0.0


def test_jensen_shannon_matches_scipy_jensenshannon() -> None:
    reference = np.array([120, 340, 95, 60, 0])
    current = np.array([100, 310, 130, 0, 25])
    expected = jensenshannon(reference / reference.sum(), current / current.sum(), base=2)
    assert jensen_shannon(reference, current) == pytest.approx(expected, rel=EXACT)
    natural = jensenshannon(reference, current)
    assert jensen_shannon(reference, current, base=math.e) == pytest.approx(natural, rel=EXACT)


def test_jensen_shannon_of_disjoint_distributions_is_one_in_base_two() -> None:
    assert jensen_shannon([5, 0], [0, 7]) == pytest.approx(1.0, rel=EXACT)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: psi([1, 2], [1, 2, 3]), "2 bins but current_counts has 3"),
        (lambda: psi([1, -1], [1, 2]), "negative counts"),
        (lambda: psi([1, 2], [0, 0]), "current_counts counts sum to 0"),
        (lambda: psi([1, 2], [1, 2], epsilon=0), "epsilon must be a small positive"),
        (lambda: jensen_shannon([1], [1, 2]), "1 bins but current_counts has 2"),
        (lambda: jensen_shannon([1, 2], [2, 1], base=1), "base must be a finite number above 1"),
        (lambda: quantile_edges([np.nan, np.nan]), "reference holds only NaN"),
        (lambda: quantile_edges([np.inf, -np.inf]), "no finite value"),
        (lambda: quantile_edges([1.0], bins=0), "bins must be a positive integer"),
    ],
)
def test_distribution_functions_refuse_bad_input(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(InvalidInput, match=message):
        call()


def test_wasserstein_matches_scipy_wasserstein_distance() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=700)
    current = rng.exponential(size=300)
    expected = stats.wasserstein_distance(reference, current)
    assert wasserstein(reference, current) == pytest.approx(expected, rel=EXACT)
    assert wasserstein([0.0, np.nan, 1.0], [5.0]) == pytest.approx(4.5, rel=EXACT)


def test_wasserstein_handles_a_million_values_quickly() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(size=1_000_000)
    current = rng.normal(0.1, size=1_000_000)
    started = time.perf_counter()
    distance = wasserstein(reference, current)
    assert time.perf_counter() - started < 5.0
    assert distance == pytest.approx(0.1, abs=0.01)


def test_wasserstein_refuses_infinite_values() -> None:
    with pytest.raises(InvalidInput, match="current holds 1 infinite value"):
        wasserstein([1.0, 2.0], [1.0, np.inf])


def test_spread_is_the_standard_deviation() -> None:
    values = np.random.default_rng(5).normal(3.0, 2.0, size=1_000)
    assert spread(values) == pytest.approx(float(np.std(values)), rel=EXACT)


def test_spread_falls_back_to_the_iqr_when_the_deviation_is_not_finite() -> None:
    values = np.concatenate([np.arange(100.0), [np.inf]])
    q75, q25 = np.quantile(values, [0.75, 0.25])
    assert spread(values) == pytest.approx((q75 - q25) / 1.349, rel=EXACT)


def test_spread_of_a_constant_reference_is_zero() -> None:
    assert spread([0.1, 0.1, 0.1]) == 0.0
    assert spread([4.0]) == 0.0


def test_normalized_wasserstein_measures_in_reference_spreads() -> None:
    reference = np.random.default_rng(6).normal(size=2_000)
    current = reference + 0.5
    expected = 0.5 / float(np.std(reference))
    assert normalized_wasserstein(reference, current) == pytest.approx(expected, rel=1e-9)


def test_normalized_wasserstein_against_a_constant_reference_is_zero_or_infinite() -> None:
    assert normalized_wasserstein([2.0, 2.0], [2.0, 2.0, 2.0]) == 0.0
    assert normalized_wasserstein([2.0, 2.0], [2.0, 3.0]) == math.inf


def test_distribution_functions_accept_pandas_columns_with_missing_values() -> None:
    pd = pytest.importorskip("pandas")
    column = pd.Series([1, 2, None, 4, 5], dtype="Int64")
    assert spread(column) == pytest.approx(float(np.std([1.0, 2.0, 4.0, 5.0])), rel=EXACT)
    assert bin_counts(column, [0.0, 3.0, 6.0]).tolist() == [2, 2]
