"""Fixed-horizon comparisons of two independent variants, A (control) and B (candidate).

Every comparison reports the effect as B minus A on the data's own scale, a confidence
interval of that effect, and a p-value. `alternative` is about B minus A: "greater" asks
whether B is above A. A one-sided alternative gives a one-sided interval (the other end is
infinite), as SciPy does.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._checks import (
    as_observations,
    as_rate_counts,
    check_alternative,
    check_probability,
)
from modelyard.stats._hodges_lehmann import shift_estimate
from modelyard.stats._proportion import proportion_interval

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

Alternative = Literal["two-sided", "less", "greater"]


@dataclass(frozen=True)
class Comparison:
    """B compared with A: the test, the effect (B minus A) and its confidence interval."""

    statistic: float
    p_value: float
    effect: float
    low: float
    high: float
    confidence: float
    method: str
    n_a: int
    n_b: int
    alternative: str = "two-sided"

    def to_dict(self) -> dict[str, float | int | str]:
        """The fields as plain Python values (infinite bounds stay `inf`)."""
        return dataclasses.asdict(self)


def two_proportion_test(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Is B's rate different from A's? The pooled two-proportion z-test.

    The p-value comes from the z statistic with the variance pooled under "no difference"
    (the two-sided one equals `scipy.stats.chi2_contingency(table, correction=False)`). The
    interval of the difference in rates is Newcombe's hybrid score interval (his method 10,
    built from the two Wilson intervals), which keeps its coverage for small groups and
    rates near 0 or 1, where the Wald interval does not. Both rates equal at 0 or at 1 give
    statistic 0 and p-value 1.
    """
    side = check_alternative(alternative)
    level = interval_level(confidence, side)
    xa, na = as_rate_counts(successes_a, n_a, "a")
    xb, nb = as_rate_counts(successes_b, n_b, "b")
    pa, pb = xa / na, xb / nb
    effect = pb - pa
    pooled = (xa + xb) / (na + nb)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb))
    statistic = effect / se if se > 0.0 else 0.0
    p_value = normal_p_value(statistic, side) if se > 0.0 else 1.0
    low_a, high_a = proportion_interval(xa, na, level)
    low_b, high_b = proportion_interval(xb, nb, level)
    low = effect - math.hypot(pb - low_b, high_a - pa)
    high = effect + math.hypot(high_b - pb, pa - low_a)
    low, high = one_sided(max(low, -1.0), min(high, 1.0), side)
    return Comparison(
        statistic=statistic,
        p_value=p_value,
        effect=effect,
        low=low,
        high=high,
        confidence=float(confidence),
        method="two-proportion z (pooled), Newcombe interval",
        n_a=na,
        n_b=nb,
        alternative=side,
    )


def welch_t_test(
    a: ArrayLike,
    b: ArrayLike,
    *,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Is B's mean different from A's? Welch's t-test, which allows unequal variances.

    Equals `scipy.stats.ttest_ind(b, a, equal_var=False)` (B first, so the statistic has
    the sign of B minus A) and its `confidence_interval`. Two constant samples make the
    difference certain: p-value 1 when their values are equal, 0 when the difference goes
    the alternative's way, with the interval shrunk to the difference.
    """
    from scipy.stats import ttest_ind

    side = check_alternative(alternative)
    level = check_probability(confidence, "confidence")
    x = as_observations(a, "a", minimum=2)
    y = as_observations(b, "b", minimum=2)
    effect = float(y.mean() - x.mean())
    method = "Welch t"
    if _constant(x) and _constant(y):
        return certain(effect, level, method, x.size, y.size, side)
    with warnings.catch_warnings():
        # SciPy flags a constant sample as "nearly identical"; its variance is exactly 0
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = ttest_ind(y, x, equal_var=False, alternative=side)
    interval = result.confidence_interval(level)
    return Comparison(
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        effect=effect,
        low=float(interval.low),
        high=float(interval.high),
        confidence=level,
        method=method,
        n_a=x.size,
        n_b=y.size,
        alternative=side,
    )


def mann_whitney_test(
    a: ArrayLike,
    b: ArrayLike,
    *,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Do B's values tend to be larger than A's? The Mann–Whitney U (Wilcoxon rank-sum) test.

    Statistic and p-value equal `scipy.stats.mannwhitneyu(b, a)`: U counts the pairs where
    B's value is above A's (ties count half). Robust to outliers and skew (latencies,
    revenue), it answers in ranks, so the effect reported is on the data's scale: the
    Hodges–Lehmann shift, the median of all differences b_j - a_i, with the
    distribution-free interval of Moses (order statistics of those differences at ranks
    from the normal approximation of U, ties ignored). When the samples are too small to
    reach `confidence` at all, the interval is unbounded.
    """
    from scipy.stats import mannwhitneyu

    side = check_alternative(alternative)
    level = interval_level(confidence, side)
    x = as_observations(a, "a")
    y = as_observations(b, "b")
    effect, low, high = shift_estimate(x, y, level)
    low, high = one_sided(low, high, side)
    if _constant(np.concatenate([x, y])):
        statistic, p_value = x.size * y.size / 2.0, 1.0  # SciPy warns; nothing differs
    else:
        result = mannwhitneyu(y, x, alternative=side)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return Comparison(
        statistic=statistic,
        p_value=p_value,
        effect=effect,
        low=low,
        high=high,
        confidence=float(confidence),
        method="Mann-Whitney U, Hodges-Lehmann shift",
        n_a=x.size,
        n_b=y.size,
        alternative=side,
    )


def interval_level(confidence: float, alternative: str) -> float:
    """The two-sided level of the interval one of whose ends is the one-sided bound."""
    level = check_probability(confidence, "confidence")
    if alternative == "two-sided":
        return level
    if level <= 0.5:
        raise InvalidInput(
            f"a one-sided bound needs confidence above 0.5 (such as 0.95); got {confidence}"
        )
    return 2.0 * level - 1.0


def one_sided(low: float, high: float, alternative: str) -> tuple[float, float]:
    """The interval with the end the alternative does not bound made infinite."""
    if alternative == "greater":
        return low, math.inf
    if alternative == "less":
        return -math.inf, high
    return low, high


def normal_p_value(z: float, alternative: str) -> float:
    """The p-value of a statistic that is standard normal under the null hypothesis."""
    from scipy.special import ndtr

    if alternative == "greater":
        p = float(ndtr(-z))
    elif alternative == "less":
        p = float(ndtr(z))
    else:
        p = 2.0 * float(ndtr(-abs(z)))
    return min(max(p, 0.0), 1.0)


def certain(
    effect: float, confidence: float, method: str, n_a: int, n_b: int, alternative: str
) -> Comparison:
    """The comparison of data without spread, where the difference is known exactly."""
    if effect == 0.0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic = math.copysign(math.inf, effect)
        toward = {"greater": effect > 0.0, "less": effect < 0.0}.get(alternative, True)
        p_value = 0.0 if toward else 1.0
    low, high = one_sided(effect, effect, alternative)
    return Comparison(
        statistic, p_value, effect, low, high, confidence, method, n_a, n_b, alternative
    )


def _constant(values: NDArray[np.float64]) -> bool:
    return bool(values.min() == values.max())
