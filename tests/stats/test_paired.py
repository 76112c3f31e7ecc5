"""Paired comparisons of two models on the same rows: SciPy's tests, B minus A."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import (
    bootstrap_interval,
    mcnemar_test,
    paired_bootstrap_test,
    paired_t_test,
    wilcoxon_test,
)

EXACT = 1e-12
ALTERNATIVES = ["two-sided", "less", "greater"]

rng = np.random.default_rng(7)
_base = rng.normal(5.0, 2.0, 500)
_rounded = rng.integers(0, 5, 120).astype(float)
_some_changed = _rounded + rng.integers(-1, 3, 120) * (rng.random(120) < 0.5)
PAIRS = {
    "small, exact null distribution": (_base[:12], _base[:12] + rng.normal(0.5, 1.0, 12)),
    "with zero differences": (_rounded, _some_changed),
    "skewed": (_base[:200], _base[:200] * rng.lognormal(0.05, 0.3, 200)),
    "large": (_base, _base + rng.normal(-0.1, 1.0, 500)),
}  # fmt: skip


@pytest.mark.parametrize("shape", PAIRS)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_paired_t_test_equals_scipy_ttest_rel_with_b_first(shape: str, alternative: Any) -> None:
    a, b = PAIRS[shape]
    expected = stats.ttest_rel(b, a, alternative=alternative)
    interval = expected.confidence_interval(0.95)
    result = paired_t_test(a, b, alternative=alternative)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT, abs=1e-300)
    assert (result.low, result.high) == pytest.approx((interval.low, interval.high), rel=EXACT)
    assert result.effect == pytest.approx(np.mean(b - a), rel=EXACT)


@pytest.mark.parametrize("shape", PAIRS)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_wilcoxon_test_equals_scipy_wilcoxon_with_b_first(shape: str, alternative: Any) -> None:
    a, b = PAIRS[shape]
    expected = stats.wilcoxon(b, a, alternative=alternative)
    result = wilcoxon_test(a, b, alternative=alternative)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT, abs=1e-300)


@pytest.mark.parametrize("shape", PAIRS)
def test_wilcoxon_effect_is_the_median_of_walsh_averages_with_its_interval(shape: str) -> None:
    a, b = PAIRS[shape]
    d = b - a
    n = d.size
    walsh = np.sort((np.add.outer(d, d) / 2.0)[np.triu_indices(n)])
    pairs = walsh.size
    z = stats.norm.ppf(0.975)
    c = math.floor(pairs / 2 + 0.5 - z * math.sqrt(n * (n + 1) * (2 * n + 1) / 24))
    result = wilcoxon_test(a, b)
    assert result.effect == pytest.approx(np.median(walsh), rel=EXACT)
    assert (result.low, result.high) == (walsh[c - 1], walsh[pairs - c])


def test_wilcoxon_with_every_row_tied_finds_nothing() -> None:
    result = wilcoxon_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (result.p_value, result.effect) == (1.0, 0.0)


def test_paired_t_test_with_equal_differences_is_certain() -> None:
    result = paired_t_test([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    assert (result.p_value, result.effect, result.low, result.high) == (0.0, 0.5, 0.5, 0.5)


def correctness(both: int, gained: int, lost: int, neither: int) -> tuple[Any, Any]:
    """Per-row correctness of A and B from the four cells of the paired table."""
    correct_a = [True] * both + [False] * gained + [True] * lost + [False] * neither
    correct_b = [True] * both + [True] * gained + [False] * lost + [False] * neither
    return np.array(correct_a), np.array(correct_b)


def test_mcnemar_interval_is_newcombes_square_and_add_interval() -> None:
    # Cavo et al. (2012), in Fagerland, Lydersen & Laake: 59, 6, 16, 80 -> -0.0621
    # (95% CI -0.1186 to -0.0046)
    result = mcnemar_test(*correctness(59, 6, 16, 80))
    assert round(result.effect, 4) == -0.0621
    assert (round(result.low, 4), round(result.high, 4)) == (-0.1186, -0.0046)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize(("gained", "lost"), [(6, 16), (0, 3), (9, 2), (12, 12)])
def test_mcnemar_with_few_discordant_rows_is_scipys_exact_binomial_test(
    gained: int, lost: int, alternative: Any
) -> None:
    expected = stats.binomtest(gained, gained + lost, 0.5, alternative=alternative)
    result = mcnemar_test(*correctness(40, gained, lost, 30), alternative=alternative)
    assert result.method == "McNemar exact (binomial)"
    assert result.statistic == gained
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT)


@pytest.mark.parametrize(("gained", "lost"), [(30, 12), (100, 130), (20, 20)])
def test_mcnemar_with_many_discordant_rows_is_the_continuity_corrected_chi_squared(
    gained: int, lost: int
) -> None:
    # the correction stops at 0: equal counts give 0, not 1 / (gained + lost) as in R
    statistic = max(abs(gained - lost) - 1, 0) ** 2 / (gained + lost)
    result = mcnemar_test(*correctness(500, gained, lost, 200))
    assert result.statistic == pytest.approx(statistic, rel=EXACT)
    assert result.p_value == pytest.approx(stats.chi2.sf(statistic, 1), rel=EXACT)
    greater = mcnemar_test(*correctness(500, gained, lost, 200), alternative="greater")
    z = math.copysign(max(abs(gained - lost) - 1, 0), gained - lost) / math.sqrt(gained + lost)
    assert greater.p_value == pytest.approx(stats.norm.sf(z), rel=EXACT)
    forced = mcnemar_test(*correctness(500, gained, lost, 200), exact=True)
    assert forced.p_value == pytest.approx(stats.binomtest(gained, gained + lost).pvalue)


def test_mcnemar_without_discordant_rows_finds_nothing() -> None:
    result = mcnemar_test([True, False, True], [True, False, True])
    assert (result.p_value, result.effect) == (1.0, 0.0)
    assert result.low <= 0.0 <= result.high


def loss(y: NDArray[np.float64], pred: NDArray[np.float64]) -> float:
    return float(np.mean(np.abs(y - pred)))


def predictions(seed: int, n: int = 200) -> tuple[Any, Any, Any]:
    generator = np.random.default_rng(seed)
    y = generator.normal(size=n)
    return y, y + generator.normal(0.0, 1.0, n), y + generator.normal(0.0, 0.8, n)


def test_paired_bootstrap_interval_is_the_bca_interval_of_the_metric_difference() -> None:
    y, pred_a, pred_b = predictions(1)
    result = paired_bootstrap_test(loss, y, pred_a, pred_b, n_resamples=500, seed=3)

    def difference(y: Any, a: Any, b: Any) -> float:
        return loss(y, b) - loss(y, a)

    expected = bootstrap_interval(difference, y, pred_a, pred_b, n_resamples=500, seed=3)
    assert (result.low, result.high) == pytest.approx(expected, rel=EXACT)
    assert result.effect == pytest.approx(loss(y, pred_b) - loss(y, pred_a), rel=EXACT)
    assert result.low <= result.effect <= result.high


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_paired_bootstrap_p_value_agrees_with_scipys_paired_permutation_test(
    alternative: Any,
) -> None:
    y, pred_a, pred_b = predictions(2, n=60)
    result = paired_bootstrap_test(
        loss, y, pred_a, pred_b, n_resamples=4000, seed=4, alternative=alternative
    )
    # for a mean of per-row losses, swapping predictions flips the sign of a row's difference
    expected = stats.permutation_test(
        (np.abs(y - pred_a), np.abs(y - pred_b)),
        lambda x, z, axis: np.mean(z - x, axis=axis),
        permutation_type="samples",
        n_resamples=4000,
        alternative=alternative,
        rng=np.random.default_rng(5),
    )
    assert result.p_value == pytest.approx(expected.pvalue, abs=0.03)


def test_paired_bootstrap_of_identical_models_finds_nothing() -> None:
    y, pred_a, _ = predictions(3, n=50)
    result = paired_bootstrap_test(loss, y, pred_a, pred_a, n_resamples=200, seed=0)
    assert (result.p_value, result.effect, result.low, result.high) == (1.0, 0.0, 0.0, 0.0)


def test_paired_bootstrap_p_value_is_never_zero() -> None:
    y = np.arange(100.0)
    result = paired_bootstrap_test(loss, y, y + 5.0, y, n_resamples=199, seed=0)
    assert result.p_value == pytest.approx(1 / 200)
    assert result.effect == -5.0


def pairs(min_size: int) -> st.SearchStrategy[tuple[list[float], list[float]]]:
    return st.integers(min_size, 40).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(-8, 8).map(float), min_size=n, max_size=n),
            st.lists(st.integers(-8, 8).map(float), min_size=n, max_size=n),
        )
    )


# SciPy's Wilcoxon on 13 rows or fewer with ties runs a full permutation test (seconds)
@settings(max_examples=40, deadline=None)
@given(st.one_of(pairs(2).map(lambda p: (p, [paired_t_test])),
                 pairs(14).map(lambda p: (p, [paired_t_test, wilcoxon_test]))),
       st.sampled_from(ALTERNATIVES))  # fmt: skip
def test_swapping_the_models_flips_the_effect_and_intervals_hold_it(
    case: tuple[tuple[list[float], list[float]], list[Any]], alternative: Any
) -> None:
    (a, b), tests = case
    for test in tests:
        forward, backward = test(a, b), test(b, a)
        assert backward.effect == pytest.approx(-forward.effect, abs=1e-12)
        assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9)
        assert (backward.low, backward.high) == pytest.approx(
            (-forward.high, -forward.low), abs=1e-9
        )
        one_sided = test(a, b, alternative=alternative)
        assert 0.0 <= one_sided.p_value <= 1.0
        assert one_sided.low <= one_sided.effect <= one_sided.high


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=80))
def test_mcnemar_swap_flips_the_effect_and_the_interval_holds_it(
    rows: list[tuple[bool, bool]],
) -> None:
    correct_a = [row[0] for row in rows]
    correct_b = [row[1] for row in rows]
    forward = mcnemar_test(correct_a, correct_b)
    backward = mcnemar_test(correct_b, correct_a)
    assert backward.effect == pytest.approx(-forward.effect, abs=1e-12)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9)
    assert (backward.low, backward.high) == pytest.approx((-forward.high, -forward.low), abs=1e-9)
    assert -1.0 <= forward.low <= forward.effect <= forward.high <= 1.0
    assert 0.0 <= forward.p_value <= 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: paired_t_test([1.0, 2.0, 3.0], [1.0, 2.0]), "a has 3 values but b has 2"),
        (lambda: paired_t_test([1.0], [2.0]), "a has 1 value"),
        (lambda: wilcoxon_test([1.0, np.nan], [1.0, 2.0]), "a has NaN"),
        (lambda: wilcoxon_test([], []), "a is empty"),
        (lambda: mcnemar_test([1, 2], [1, 0]), "correct_a must say per row"),
        (lambda: mcnemar_test([True], [True, False]), "a has 1 values but b has 2"),
        (lambda: mcnemar_test([True], [False], exact="yes"), "exact must be"),
        (lambda: paired_bootstrap_test("mae", [1.0, 2.0], [1.0, 2.0], [1.0, 2.0]), "metric"),
        (lambda: paired_bootstrap_test(loss, [1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 2.0]), "y has 3"),
        (lambda: paired_bootstrap_test(loss, [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], n_resamples=0),
         "positive integer"),
    ],
)  # fmt: skip
def test_paired_comparisons_refuse_bad_input(call: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()
