"""Statistics shared by drift monitoring, A/B rollout decisions and model comparisons.

Pure functions over NumPy array-likes (pandas columns, lists): no I/O, nothing stored.
Each one validates its input and raises `InvalidInput` saying what to pass instead. SciPy
is loaded on first use, so importing this package costs only NumPy.
"""

from __future__ import annotations

from modelyard.stats._bandit import ArmChoice, thompson_beta, thompson_gaussian
from modelyard.stats._bootstrap import bootstrap_interval
from modelyard.stats._comparison import (
    Comparison,
    mann_whitney_test,
    two_proportion_test,
    welch_t_test,
)
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
from modelyard.stats._paired import (
    mcnemar_test,
    paired_bootstrap_test,
    paired_t_test,
    wilcoxon_test,
)
from modelyard.stats._power import power, sample_size
from modelyard.stats._proportion import proportion_interval
from modelyard.stats._sample_ratio import SampleRatioResult, srm_test
from modelyard.stats._sequential import (
    SequentialResult,
    sequential_mean_test,
    sequential_proportion_test,
)
from modelyard.stats._tests import (
    SampleComparison,
    TestResult,
    chi2_test,
    compare_samples,
    ks_test,
)

__all__ = [
    "ArmChoice",
    "Comparison",
    "SampleComparison",
    "SampleRatioResult",
    "SequentialResult",
    "TestResult",
    "benjamini_hochberg",
    "bin_counts",
    "bootstrap_interval",
    "chi2_test",
    "compare_samples",
    "holm",
    "jensen_shannon",
    "ks_test",
    "mann_whitney_test",
    "mcnemar_test",
    "normalized_wasserstein",
    "paired_bootstrap_test",
    "paired_t_test",
    "power",
    "proportion_interval",
    "psi",
    "quantile_edges",
    "sample_size",
    "sequential_mean_test",
    "sequential_proportion_test",
    "spread",
    "srm_test",
    "thompson_beta",
    "thompson_gaussian",
    "two_proportion_test",
    "wasserstein",
    "welch_t_test",
    "wilcoxon_test",
]
