"""Two-sample hypothesis tests: has the current sample left the reference's distribution?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from modelyard.stats._checks import as_count_pair, as_sample

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


@dataclass(frozen=True)
class TestResult:
    """A test's statistic and its p-value (two-sided unless the test says otherwise)."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    statistic: float
    p_value: float


def ks_test(reference: ArrayLike, current: ArrayLike) -> TestResult:
    """Two-sample Kolmogorov–Smirnov test on numeric samples (NaN dropped first).

    The statistic is the largest gap between the two empirical CDFs, in [0, 1]. The
    p-value is exact while both samples have at most 10,000 values and Smirnov's asymptotic
    one beyond, so large windows stay fast; both equal `scipy.stats.ks_2samp` (which falls
    back to the asymptotic p-value, with a RuntimeWarning, in the rare cases where the
    exact computation fails).
    """
    from scipy.stats import ks_2samp

    result = ks_2samp(
        as_sample(reference, "reference"), as_sample(current, "current"), method="auto"
    )
    return TestResult(statistic=float(result.statistic), p_value=float(result.pvalue))


def chi2_test(reference_counts: ArrayLike, current_counts: ArrayLike) -> TestResult:
    """Pearson's chi-squared test of homogeneity of two count vectors over the same categories.

    Categories with no count on either side are dropped; a category seen on one side only is
    kept, which is how a new (or vanished) category shows. With one category left the
    samples cannot differ: statistic 0, p-value 1. Equals
    `scipy.stats.chi2_contingency(table, correction=False)` on the 2 x k table. Like any
    chi-squared test it is approximate when expected counts are small (below about 5).
    """
    from scipy.stats import chi2_contingency

    reference, current = as_count_pair(reference_counts, current_counts)
    seen = (reference + current) > 0
    table = np.vstack([reference[seen], current[seen]])
    if table.shape[1] == 1:
        return TestResult(statistic=0.0, p_value=1.0)
    result = chi2_contingency(table, correction=False)
    return TestResult(statistic=float(result.statistic), p_value=float(result.pvalue))


_EXACT_KS_MAX = 10_000  # scipy's "auto": exact p-values up to this many values per side


@dataclass(frozen=True)
class SampleComparison:
    """Two numeric samples compared through their empirical CDFs, sorted once."""

    ks: TestResult
    wasserstein: float


def compare_samples(reference: ArrayLike, current: ArrayLike) -> SampleComparison:
    """The Kolmogorov–Smirnov test and the Wasserstein-1 distance in one pass.

    Both come from the same two empirical CDFs, so each sample is sorted once instead of
    once per statistic: equal to `ks_test` and `wasserstein` (and so to SciPy's
    `ks_2samp` and `wasserstein_distance`), about twice as fast on large samples.
    NaN is dropped; infinite values are refused, as `wasserstein` refuses them.
    """
    a = np.sort(as_sample(reference, "reference", finite=True))
    b = np.sort(as_sample(current, "current", finite=True))
    joined = np.concatenate([a, b])
    order = np.argsort(joined, kind="stable")  # two sorted runs: merged in linear time
    values = joined[order]
    from_a = order < a.size
    gap = np.abs(np.cumsum(from_a) / a.size - np.cumsum(~from_a) / b.size)
    last = np.append(values[1:] != values[:-1], True)  # each CDF jumps past all its ties
    gap, values = gap[last], values[last]
    statistic = float(gap.max())
    wasserstein = float(np.sum(gap[:-1] * np.diff(values)))
    if max(a.size, b.size) <= _EXACT_KS_MAX:
        return SampleComparison(ks_test(a, b), wasserstein)
    from scipy.stats import kstwo

    big, small = sorted((float(a.size), float(b.size)), reverse=True)
    effective = np.round(big * small / (big + small))
    p_value = float(np.clip(kstwo.sf(statistic, effective), 0.0, 1.0))
    return SampleComparison(TestResult(statistic, p_value), wasserstein)
