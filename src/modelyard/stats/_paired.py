"""Paired comparisons: two models scored on the same rows (champion against challenger).

Pairing removes the row-to-row variation both models share, so these tests need far fewer
rows than the unpaired ones. `a[i]` and `b[i]` belong to row i; the effect is B minus A.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, SupportsFloat

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._bootstrap import bootstrap_interval
from modelyard.stats._checks import (
    as_observations,
    as_pairs,
    check_alternative,
    check_positive_int,
    check_probability,
)
from modelyard.stats._comparison import (
    Alternative,
    Comparison,
    certain,
    interval_level,
    normal_p_value,
    one_sided,
)
from modelyard.stats._hodges_lehmann import pseudo_median
from modelyard.stats._proportion import proportion_interval

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

Metric = Callable[..., SupportsFloat]

# McNemar: below this many discordant rows the exact binomial test is used
_EXACT_DISCORDANT = 25


def paired_t_test(
    a: ArrayLike, b: ArrayLike, *, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> Comparison:
    """Is the mean of b - a different from 0? The paired t-test.

    Equals `scipy.stats.ttest_rel(b, a)` and its `confidence_interval`. Differences that
    are all equal make the effect certain (see `welch_t_test`).
    """
    from scipy.stats import ttest_rel

    side = check_alternative(alternative)
    level = check_probability(confidence, "confidence")
    x, y = as_pairs(a, b, minimum=2)
    differences = y - x
    effect = float(differences.mean())
    if differences.min() == differences.max():
        return certain(effect, level, "paired t", x.size, y.size, side)
    result = ttest_rel(y, x, alternative=side)
    interval = result.confidence_interval(level)
    return Comparison(
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        effect=effect,
        low=float(interval.low),
        high=float(interval.high),
        confidence=level,
        method="paired t",
        n_a=x.size,
        n_b=y.size,
        alternative=side,
    )


def wilcoxon_test(
    a: ArrayLike, b: ArrayLike, *, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> Comparison:
    """Do the differences b - a lean above 0? The Wilcoxon signed-rank test.

    Statistic and p-value equal `scipy.stats.wilcoxon(b, a)` (rows with b == a are left
    out of the test, SciPy's default). The effect is the Hodges–Lehmann pseudo-median of
    all the differences (the median of their pairwise averages), with its distribution-free
    interval at order statistics from the normal approximation of the signed-rank
    statistic; unbounded when there are too few rows to reach `confidence`.
    """
    from scipy.stats import wilcoxon

    side = check_alternative(alternative)
    level = interval_level(confidence, side)
    x, y = as_pairs(a, b)
    differences = y - x
    effect, low, high = pseudo_median(differences, level)
    low, high = one_sided(low, high, side)
    if not differences.any():
        statistic, p_value = 0.0, 1.0  # SciPy warns: every row is a tie
    else:
        result = wilcoxon(y, x, alternative=side)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return Comparison(
        statistic=statistic,
        p_value=p_value,
        effect=effect,
        low=low,
        high=high,
        confidence=float(confidence),
        method="Wilcoxon signed-rank, Hodges-Lehmann pseudo-median",
        n_a=x.size,
        n_b=y.size,
        alternative=side,
    )


def mcnemar_test(
    correct_a: ArrayLike,
    correct_b: ArrayLike,
    *,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
    exact: bool | None = None,
) -> Comparison:
    """Is B right more often than A on the same rows? McNemar's test on per-row correctness.

    Only the discordant rows count: `gained` where B is right and A wrong, `lost` the
    reverse. With fewer than 25 of them (or `exact=True`) the p-value is the exact binomial
    one, `scipy.stats.binomtest(gained, gained + lost, 0.5)`, and the statistic is
    `gained`; otherwise the statistic is the continuity-corrected chi-squared
    max(|gained - lost| - 1, 0)^2 / (gained + lost), its signed root giving one-sided
    p-values (R's `mcnemar.test` does not stop the correction at 0).
    The effect is the difference in accuracy, with Newcombe's square-and-add interval for
    paired proportions (Wilson intervals combined with the correlation of the pairs).
    """
    side = check_alternative(alternative)
    level = interval_level(confidence, side)
    a, b = as_pairs(_as_correct(correct_a, "correct_a"), _as_correct(correct_b, "correct_b"))
    if exact is not None and not isinstance(exact, bool):
        raise InvalidInput(f"exact must be True, False or None (automatic); got {exact!r}")
    right_a, right_b = a.astype(bool), b.astype(bool)
    n = right_a.size
    gained = int(np.count_nonzero(right_b & ~right_a))
    lost = int(np.count_nonzero(right_a & ~right_b))
    both = int(np.count_nonzero(right_a & right_b))
    statistic, p_value, method = _mcnemar_p_value(gained, lost, side, exact)
    effect = (gained - lost) / n
    low, high = _paired_rates_interval(both, gained, lost, n, level)
    low, high = one_sided(low, high, side)
    return Comparison(statistic, p_value, effect, low, high, float(confidence), method, n, n, side)


def paired_bootstrap_test(
    metric: Metric,
    y: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    *,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
    n_resamples: int = 2000,
    seed: int | np.random.Generator | None = None,
) -> Comparison:
    """Is `metric(y, pred_b) - metric(y, pred_a)` different from 0 on the same rows?

    For any metric (AUC, F1, log loss, a business metric) where no closed form exists.
    The interval is the BCa bootstrap interval of the difference, rows resampled with
    both models' predictions (`bootstrap_interval`). The p-value is a paired permutation
    test: under "the models are interchangeable", swapping A's and B's prediction on a
    random half of the rows leaves the difference's distribution unchanged;
    p = (1 + #swaps at least as extreme) / (1 + n_resamples), never 0. The statistic is
    the observed difference. Arrays must be numeric (encode class labels as numbers) and
    the metric defined on every resample (an AUC needs both classes in each).
    """
    side = check_alternative(alternative)
    level = interval_level(confidence, side)
    count = check_positive_int(n_resamples, "n_resamples")
    if not callable(metric):
        raise InvalidInput("metric must be a function metric(y, pred) returning a number")
    truth = as_observations(y, "y", minimum=2)
    a, b = as_pairs(pred_a, pred_b, minimum=2)
    if truth.size != a.size:
        raise InvalidInput(
            f"y has {truth.size} rows but the predictions have {a.size}; pass one label and "
            "one prediction of each model per row"
        )

    def difference(y: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
        return float(metric(y, b)) - float(metric(y, a))

    rng = np.random.default_rng(seed)
    observed = difference(truth, a, b)
    if not math.isfinite(observed):
        raise InvalidInput(f"metric returned a non-finite difference ({observed}) on the data")
    low, high = bootstrap_interval(
        difference, truth, a, b, confidence=level, n_resamples=count, method="bca", seed=rng
    )
    low, high = one_sided(low, high, side)
    p_value = _permutation_p_value(difference, truth, a, b, observed, side, count, rng)
    return Comparison(
        statistic=observed,
        p_value=p_value,
        effect=observed,
        low=low,
        high=high,
        confidence=float(confidence),
        method="paired permutation test, BCa bootstrap interval",
        n_a=a.size,
        n_b=b.size,
        alternative=side,
    )


def _as_correct(values: ArrayLike, name: str) -> NDArray[np.float64]:
    array = as_observations(values, name)
    if not bool(np.all((array == 0.0) | (array == 1.0))):
        raise InvalidInput(
            f"{name} must say per row whether the model was right: booleans or 0/1 (such as "
            "y_true == y_pred)"
        )
    return array


def _mcnemar_p_value(
    gained: int, lost: int, alternative: str, exact: bool | None
) -> tuple[float, float, str]:
    from scipy.stats import binomtest

    discordant = gained + lost
    if discordant == 0:
        return 0.0, 1.0, "McNemar (no discordant rows)"
    if exact or (exact is None and discordant < _EXACT_DISCORDANT):
        result = binomtest(gained, discordant, 0.5, alternative=alternative)
        return float(gained), float(result.pvalue), "McNemar exact (binomial)"
    corrected = max(abs(gained - lost) - 1.0, 0.0)
    statistic = corrected**2 / discordant
    z = math.copysign(corrected, gained - lost) / math.sqrt(discordant)
    if alternative == "two-sided":
        from scipy.special import chdtrc

        p_value = float(chdtrc(1.0, statistic))
    else:
        p_value = normal_p_value(z, alternative)
    return statistic, p_value, "McNemar chi-squared (continuity-corrected)"


def _paired_rates_interval(
    both: int, gained: int, lost: int, n: int, level: float
) -> tuple[float, float]:
    """Newcombe (1998) square-and-add interval for accuracy(B) - accuracy(A), paired."""
    neither = n - both - gained - lost
    right_b, right_a = both + gained, both + lost
    p_b, p_a = right_b / n, right_a / n
    low_b, high_b = proportion_interval(right_b, n, level)
    low_a, high_a = proportion_interval(right_a, n, level)
    margins = right_b * (n - right_b) * right_a * (n - right_a)
    cross = both * neither - gained * lost
    # the correlation of the two rates, continuity-corrected when positive
    if margins == 0 or 0 <= cross <= n / 2.0:
        phi = 0.0
    elif cross > n / 2.0:
        phi = (cross - n / 2.0) / math.sqrt(margins)
    else:
        phi = cross / math.sqrt(margins)
    effect = p_b - p_a
    below_b, above_a = p_b - low_b, high_a - p_a
    above_b, below_a = high_b - p_b, p_a - low_a
    low = effect - math.sqrt(max(below_b**2 - 2 * phi * below_b * above_a + above_a**2, 0.0))
    high = effect + math.sqrt(max(below_a**2 - 2 * phi * below_a * above_b + above_b**2, 0.0))
    return max(low, -1.0), min(high, 1.0)


def _permutation_p_value(
    difference: Callable[..., float],
    y: NDArray[np.float64],
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    observed: float,
    alternative: str,
    count: int,
    rng: np.random.Generator,
) -> float:
    # differences equal to the observed one up to rounding count as "as extreme" (as SciPy)
    slack = 1e-12 * max(abs(observed), 1e-300)
    extreme = 0
    for _ in range(count):
        swap = rng.random(a.size) < 0.5
        value = difference(y, np.where(swap, b, a), np.where(swap, a, b))
        if alternative == "greater":
            extreme += value >= observed - slack
        elif alternative == "less":
            extreme += value <= observed + slack
        else:
            extreme += abs(value) >= abs(observed) - slack
    return (1.0 + extreme) / (1.0 + count)
