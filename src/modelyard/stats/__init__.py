"""Statistics shared by drift monitoring, A/B rollout decisions and model comparisons.

Pure functions over NumPy array-likes (pandas columns, lists): no I/O, nothing stored.
Each one validates its input and raises `InvalidInput` saying what to pass instead. SciPy
is loaded on first use, so importing this package costs only NumPy.
"""

from __future__ import annotations

from modelyard.stats._bootstrap import bootstrap_interval
from modelyard.stats._distributions import (
    bin_counts,
    jensen_shannon,
    normalized_wasserstein,
    psi,
    quantile_edges,
    spread,
    wasserstein,
)
from modelyard.stats._multiple import benjamini_hochberg, holm
from modelyard.stats._proportion import proportion_interval
from modelyard.stats._tests import (
    SampleComparison,
    TestResult,
    chi2_test,
    compare_samples,
    ks_test,
)

__all__ = [
    "SampleComparison",
    "TestResult",
    "benjamini_hochberg",
    "bin_counts",
    "bootstrap_interval",
    "chi2_test",
    "compare_samples",
    "holm",
    "jensen_shannon",
    "ks_test",
    "normalized_wasserstein",
    "proportion_interval",
    "psi",
    "quantile_edges",
    "spread",
    "wasserstein",
]
