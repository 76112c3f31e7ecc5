"""Comparing two independent variants: SciPy's tests, B minus A, intervals that hold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import Comparison, mann_whitney_test, two_proportion_test, welch_t_test

EXACT = 1e-12
ALTERNATIVES = ["two-sided", "less", "greater"]

rng = np.random.default_rng(2024)
SHAPES = {
    "small normal": (rng.normal(0.0, 1.0, 6), rng.normal(0.8, 1.0, 7)),
    "unequal sizes and spreads": (rng.normal(0.0, 1.0, 40), rng.normal(0.3, 3.0, 400)),
    "skewed latencies": (rng.lognormal(3.0, 0.6, 300), rng.lognormal(3.1, 0.6, 250)),
    "tied integers": (
        rng.integers(1, 6, 80).astype(float),
        rng.integers(1, 7, 90).astype(float),
    ),
    "large": (rng.normal(10.0, 2.0, 5_000), rng.normal(10.05, 2.0, 6_000)),
}

# a few distinct values, so that ties and equal samples are common
values = st.lists(st.integers(-20, 20).map(lambda v: v / 4.0), min_size=2, max_size=40)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_welch_t_test_equals_scipy_ttest_ind_with_b_first(shape: str, alternative: Any) -> None:
    a, b = SHAPES[shape]
    expected = stats.ttest_ind(b, a, equal_var=False, alternative=alternative)
    interval = expected.confidence_interval(0.9)
    result = welch_t_test(a, b, confidence=0.9, alternative=alternative)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT, abs=1e-300)
    assert (result.low, result.high) == pytest.approx((interval.low, interval.high), rel=EXACT)
    assert result.effect == pytest.approx(b.mean() - a.mean(), rel=EXACT)
    assert (result.n_a, result.n_b, result.alternative) == (a.size, b.size, alternative)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_mann_whitney_test_equals_scipy_mannwhitneyu_with_b_first(
    shape: str, alternative: Any
) -> None:
    a, b = SHAPES[shape]
    expected = stats.mannwhitneyu(b, a, alternative=alternative)
    result = mann_whitney_test(a, b, alternative=alternative)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT, abs=1e-300)


def moses_ranks(n_a: int, n_b: int, level: float) -> tuple[int, int]:
    """1-based ranks of the interval ends among the n_a * n_b differences (Hollander–Wolfe)."""
    pairs = n_a * n_b
    z = stats.norm.ppf(0.5 + level / 2.0)
    c = math.floor(pairs / 2.0 + 0.5 - z * math.sqrt(pairs * (n_a + n_b + 1) / 12.0))
    return c, pairs + 1 - c


@pytest.mark.parametrize("shape", ["small normal", "unequal sizes and spreads", "tied integers"])
def test_mann_whitney_effect_is_the_median_of_all_differences_with_moses_interval(
    shape: str,
) -> None:
    a, b = SHAPES[shape]
    differences = np.sort(np.subtract.outer(b, a).ravel())
    low_rank, high_rank = moses_ranks(a.size, b.size, 0.9)
    result = mann_whitney_test(a, b, confidence=0.9)
    assert result.effect == pytest.approx(np.median(differences), rel=EXACT)
    assert result.low == differences[low_rank - 1]
    assert result.high == differences[high_rank - 1]


def test_mann_whitney_one_sided_interval_is_a_bound_at_the_confidence() -> None:
    a, b = SHAPES["unequal sizes and spreads"]
    two_sided = mann_whitney_test(a, b, confidence=0.9)
    greater = mann_whitney_test(a, b, confidence=0.95, alternative="greater")
    less = mann_whitney_test(a, b, confidence=0.95, alternative="less")
    assert (greater.low, greater.high) == (two_sided.low, math.inf)
    assert (less.low, less.high) == (-math.inf, two_sided.high)


def test_mann_whitney_interval_covers_a_true_shift_at_its_confidence() -> None:
    generator = np.random.default_rng(5)
    covered = 0
    for _ in range(400):
        a = generator.standard_t(3, 30)
        b = generator.standard_t(3, 25) + 1.0
        result = mann_whitney_test(a, b)
        covered += result.low <= 1.0 <= result.high
    assert 0.92 <= covered / 400 <= 0.98  # 95% +- 3 standard errors


def test_mann_whitney_on_samples_too_small_for_the_confidence_gives_an_unbounded_interval() -> None:
    result = mann_whitney_test([1.0, 2.0], [3.0, 5.0])
    assert result.effect == 2.5
    assert (result.low, result.high) == (-math.inf, math.inf)


def test_mann_whitney_on_identical_constant_samples_finds_nothing() -> None:
    result = mann_whitney_test([2.0] * 5, [2.0] * 7)
    assert (result.statistic, result.p_value, result.effect) == (17.5, 1.0, 0.0)


@pytest.mark.parametrize(
    ("counts", "expected_interval"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80
        ((48, 80, 56, 70), (0.0524, 0.3339)),
        # Perondi et al. (2004), as in Fagerland, Lydersen & Laake: 7/34 - 1/34
        ((1, 34, 7, 34), (0.0189, 0.3404)),
    ],
)
def test_two_proportion_interval_is_newcombes_hybrid_score_interval(
    counts: tuple[int, int, int, int], expected_interval: tuple[float, float]
) -> None:
    result = two_proportion_test(*counts)
    assert (round(result.low, 4), round(result.high, 4)) == expected_interval
    assert result.effect == pytest.approx(counts[2] / counts[3] - counts[0] / counts[1])


@pytest.mark.parametrize(
    "counts",
    [(48, 80, 56, 70), (1, 34, 7, 34), (120, 1_000, 100, 1_000), (5, 20, 5, 2_000), (0, 9, 3, 9)],
)
def test_two_proportion_p_value_equals_the_chi_squared_test_without_correction(
    counts: tuple[int, int, int, int],
) -> None:
    xa, na, xb, nb = counts
    table = [[xa, na - xa], [xb, nb - xb]]
    expected = stats.chi2_contingency(table, correction=False)
    result = two_proportion_test(*counts)
    assert result.statistic**2 == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-10)
    assert np.sign(result.statistic) == np.sign(xb / nb - xa / na)


@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_two_proportion_one_sided_p_value_is_a_normal_tail(alternative: Any) -> None:
    result = two_proportion_test(120, 1_000, 150, 1_000, alternative=alternative)
    tail = stats.norm.sf if alternative == "greater" else stats.norm.cdf
    assert result.p_value == pytest.approx(tail(result.statistic), rel=EXACT)
    two_sided = two_proportion_test(120, 1_000, 150, 1_000, confidence=0.9)
    bounded = result.low if alternative == "greater" else result.high
    assert bounded == pytest.approx(two_sided.low if alternative == "greater" else two_sided.high)


def test_two_proportion_with_both_rates_at_zero_finds_nothing() -> None:
    result = two_proportion_test(0, 50, 0, 80)
    assert (result.statistic, result.p_value, result.effect) == (0.0, 1.0, 0.0)
    assert result.low < 0.0 < result.high


def test_constant_samples_make_the_welch_difference_certain() -> None:
    equal = welch_t_test([3.0, 3.0, 3.0], [3.0, 3.0])
    assert (equal.p_value, equal.effect, equal.low, equal.high) == (1.0, 0.0, 0.0, 0.0)
    apart = welch_t_test([3.0, 3.0, 3.0], [4.0, 4.0])
    assert (apart.statistic, apart.p_value, apart.low, apart.high) == (math.inf, 0.0, 1.0, 1.0)
    wrong_way = welch_t_test([3.0, 3.0], [4.0, 4.0], alternative="less")
    assert wrong_way.p_value == 1.0


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_swapping_a_and_b_flips_the_effect_and_keeps_the_two_sided_p_value(
    a: list[float], b: list[float]
) -> None:
    for test in (welch_t_test, mann_whitney_test):
        forward, backward = test(a, b), test(b, a)
        assert backward.effect == pytest.approx(-forward.effect, abs=1e-12)
        assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9)
        assert (backward.low, backward.high) == pytest.approx(
            (-forward.high, -forward.low), abs=1e-9
        )


@settings(max_examples=60, deadline=None)
@given(values, values, st.sampled_from(ALTERNATIVES), st.floats(0.6, 0.99))
def test_comparisons_give_p_values_in_the_unit_interval_and_intervals_around_the_effect(
    a: list[float], b: list[float], alternative: Any, confidence: float
) -> None:
    for test in (welch_t_test, mann_whitney_test):
        result = test(a, b, confidence=confidence, alternative=alternative)
        assert 0.0 <= result.p_value <= 1.0
        assert result.low <= result.effect + 1e-9
        assert result.effect <= result.high + 1e-9


counts = st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@settings(max_examples=100, deadline=None)
@given(counts, counts, st.floats(0.6, 0.99))
def test_two_proportion_swap_flips_the_effect_and_the_interval_holds_it(
    arm_a: tuple[int, int], arm_b: tuple[int, int], confidence: float
) -> None:
    forward = two_proportion_test(*arm_a, *arm_b, confidence=confidence)
    backward = two_proportion_test(*arm_b, *arm_a, confidence=confidence)
    assert backward.effect == pytest.approx(-forward.effect, abs=1e-12)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9)
    assert (backward.low, backward.high) == pytest.approx((-forward.high, -forward.low), abs=1e-9)
    assert -1.0 <= forward.low <= forward.effect <= forward.high <= 1.0
    assert 0.0 <= forward.p_value <= 1.0


def test_comparison_to_dict_holds_every_field() -> None:
    result = two_proportion_test(10, 100, 20, 100)
    data = result.to_dict()
    assert Comparison(**data) == result  # type: ignore[arg-type]
    assert set(data) == {
        "statistic", "p_value", "effect", "low", "high", "confidence", "method", "n_a", "n_b",
        "alternative",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: welch_t_test([1.0], [1.0, 2.0]), "a has 1 value"),
        (lambda: welch_t_test([], [1.0, 2.0]), "a is empty"),
        (lambda: welch_t_test([1.0, np.nan], [1.0, 2.0]), "a has NaN or infinite"),
        (lambda: welch_t_test([1.0, 2.0], [[1.0, 2.0]]), "one-dimensional"),
        (lambda: welch_t_test([1.0, 2.0], [1.0, 2.0], confidence=1.5), "strictly between"),
        (lambda: welch_t_test([1.0, 2.0], [1.0, 3.0], alternative="bigger"), "'two-sided'"),
        (lambda: mann_whitney_test([1.0], []), "b is empty"),
        (lambda: mann_whitney_test([1.0], [np.inf]), "b has NaN or infinite"),
        (
            lambda: mann_whitney_test([1.0], [2.0], confidence=0.4, alternative="less"),
            "above 0.5",
        ),
        (lambda: two_proportion_test(5, 3, 1, 3), "successes_a \\(5\\) exceed n_a \\(3\\)"),
        (lambda: two_proportion_test(1, 3, -1, 3), "successes_b must be a whole number"),
        (lambda: two_proportion_test(1, 0, 1, 3), "n_a is 0"),
        (lambda: two_proportion_test(1.5, 3, 1, 3), "whole number"),
        (lambda: two_proportion_test(True, 3, 1, 3), "whole number"),
    ],
)
def test_comparisons_refuse_bad_input(call: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()
