"""Multiple-testing corrections: many columns tested at once must not raise many false alarms.

Both take raw p-values in any order and return adjusted ones in the same order; reject the
hypotheses whose adjusted p-value is at most the chosen level. An empty family gives an
empty result. Leave inconclusive tests (NaN p-values) out before correcting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._checks import as_float_array

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


def benjamini_hochberg(p_values: ArrayLike) -> NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values, which control the false discovery rate.

    Monotone in the raw p-values and capped at 1; equal to
    `scipy.stats.false_discovery_control(p_values, method="bh")`.
    """
    ps = _as_p_values(p_values)
    m = ps.size
    if m <= 1:
        return ps
    order = np.argsort(ps)
    ranked = ps[order] * (m / np.arange(1, m + 1, dtype=np.float64))
    # a hypothesis is rejected whenever a larger p-value's bound is
    np.minimum.accumulate(ranked[::-1], out=ranked[::-1])
    return _unsort(ranked, order)


def holm(p_values: ArrayLike) -> NDArray[np.float64]:
    """Holm–Bonferroni adjusted p-values, which control the family-wise error rate.

    Uniformly more powerful than plain Bonferroni; monotone in the raw p-values and capped
    at 1.
    """
    ps = _as_p_values(p_values)
    m = ps.size
    if m <= 1:
        return ps
    order = np.argsort(ps)
    ranked = ps[order] * np.arange(m, 0, -1, dtype=np.float64)
    # step-down: a hypothesis can only be rejected after every smaller p-value is
    np.maximum.accumulate(ranked, out=ranked)
    return _unsort(ranked, order)


def _as_p_values(p_values: ArrayLike) -> NDArray[np.float64]:
    ps = as_float_array(p_values, "p_values").copy()
    missing = np.flatnonzero(np.isnan(ps))
    if missing.size:
        raise InvalidInput(
            f"p_values has NaN at positions {missing[:5].tolist()}; leave inconclusive "
            "tests out of the correction"
        )
    outside = np.flatnonzero((ps < 0.0) | (ps > 1.0))
    if outside.size:
        raise InvalidInput(
            f"p_values must lie in [0, 1]; {ps[outside[0]]} at position {int(outside[0])} does not"
        )
    return ps


def _unsort(ranked: NDArray[np.float64], order: NDArray[np.intp]) -> NDArray[np.float64]:
    adjusted = np.empty_like(ranked)
    adjusted[order] = ranked
    return np.clip(adjusted, 0.0, 1.0)
