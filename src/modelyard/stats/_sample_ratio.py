"""Sample-ratio mismatch: did the traffic split come out as configured?

A split that drifts from its configuration (a router bug, bots hitting one variant, a
variant that crashes before logging) biases every comparison built on it, so a rollout
checks it before trusting any other result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._checks import as_counts, as_float_array, check_probability
from modelyard.stats._tests import TestResult

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SampleRatioResult(TestResult):
    """A chi-squared goodness-of-fit test of the split, and whether it is a mismatch."""

    mismatch: bool
    threshold: float


def srm_test(
    observed_counts: ArrayLike, expected_shares: ArrayLike, *, threshold: float = SRM_THRESHOLD
) -> SampleRatioResult:
    """Pearson's chi-squared test of the observed counts per variant against their shares.

    `expected_shares` are the configured weights, in any unit ([50, 50], [0.9, 0.1]); they
    are normalized. Equals `scipy.stats.chisquare(observed, expected)`. `mismatch` is
    p < `threshold`, 0.001 by default: the check runs at every look of every experiment,
    so a strict level keeps false alarms rare, while a real mismatch on live traffic
    reaches it quickly (52/48 over 10,000 requests gives p = 6e-5). A variant with share 0
    that received traffic is a mismatch (p = 0); one that received none is left out.
    """
    from scipy.stats import chisquare

    level = check_probability(threshold, "threshold")
    counts = as_counts(observed_counts, "observed_counts")
    shares = as_float_array(expected_shares, "expected_shares")
    if shares.size != counts.size:
        raise InvalidInput(
            f"observed_counts has {counts.size} variants but expected_shares has "
            f"{shares.size}; pass one share per variant"
        )
    if not bool(np.all(np.isfinite(shares) & (shares >= 0.0))) or shares.sum() <= 0.0:
        raise InvalidInput(
            "expected_shares must be finite, >= 0 and not all 0, such as [50, 50]; got "
            f"{shares.tolist()}"
        )
    if bool(np.any((shares == 0.0) & (counts > 0.0))):
        return SampleRatioResult(np.inf, 0.0, True, level)
    kept = shares > 0.0
    counts, shares = counts[kept], shares[kept]
    if counts.size == 1:
        return SampleRatioResult(0.0, 1.0, False, level)
    expected = counts.sum() * shares / shares.sum()
    result = chisquare(counts, expected)
    p_value = float(result.pvalue)
    return SampleRatioResult(float(result.statistic), p_value, p_value < level, level)
