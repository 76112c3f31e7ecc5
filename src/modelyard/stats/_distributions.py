"""Binning a column against its reference and measuring how far two distributions are apart.

Bins are right-closed, `(e[i], e[i + 1]]`, the first one also holding its left edge: quantile
edges are values of the reference, so a bin ending at a value holds that value.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._checks import (
    as_count_pair,
    as_float_array,
    as_sample,
    check_positive_int,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


def quantile_edges(reference: ArrayLike, bins: int = 10) -> NDArray[np.float64]:
    """Bin edges at the reference's quantiles, so each bin holds about as much reference.

    The first edge is -inf and the last +inf, so every current value falls in a bin. Inner
    edges are distinct values of the reference (NaN and infinities ignored) below its
    maximum, so a reference with few distinct values gets fewer bins: a constant one gets
    one bin, a binary one two.
    """
    bins = check_positive_int(bins, "bins")
    values = as_sample(reference, "reference")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InvalidInput("reference holds no finite value; bin edges need at least one")
    probabilities = np.arange(1, bins) / bins
    # "inverted_cdf" picks data values, so (-inf, q_p] holds at least a fraction p
    inner = np.unique(np.quantile(finite, probabilities, method="inverted_cdf"))
    inner = inner[inner < finite.max()]
    return np.concatenate(([-np.inf], inner, [np.inf]))


def bin_counts(values: ArrayLike, edges: ArrayLike) -> NDArray[np.int64]:
    """How many of `values` fall in each bin of `edges` (NaN and values outside ignored).

    Empty `values` give all-zero counts: an empty window is for the caller to judge.
    """
    bounds = as_float_array(edges, "edges")
    if bounds.size < 2 or not bool(np.all(np.diff(bounds) > 0)):
        raise InvalidInput(
            "edges must be at least two strictly increasing numbers, such as "
            "quantile_edges(reference) returns"
        )
    array = as_float_array(values, "values")
    inside = array[(array >= bounds[0]) & (array <= bounds[-1])]
    index = np.searchsorted(bounds, inside, side="left") - 1
    np.maximum(index, 0, out=index)  # the first bin holds its left edge too
    return np.bincount(index, minlength=bounds.size - 1).astype(np.int64)


def psi(reference_counts: ArrayLike, current_counts: ArrayLike, *, epsilon: float = 1e-4) -> float:
    """Population stability index of the current counts against the reference, same bins.

    `sum((c - r) * ln(c / r))` over the fractions per bin, a fraction of 0 replaced by
    `epsilon` so that a bin empty on one side counts as a large but finite shift. Always
    >= 0. The usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a
    large one.
    """
    reference, current = as_count_pair(reference_counts, current_counts)
    if not (isinstance(epsilon, int | float | np.floating) and 0.0 < epsilon < 1.0):
        raise InvalidInput(f"epsilon must be a small positive number such as 1e-4; got {epsilon}")
    r = reference / reference.sum()
    c = current / current.sum()
    r = np.where(r == 0.0, epsilon, r)
    c = np.where(c == 0.0, epsilon, c)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(
    reference_counts: ArrayLike, current_counts: ArrayLike, *, base: float = 2.0
) -> float:
    """Jensen–Shannon distance (the square root of the divergence) between two count vectors.

    Symmetric, finite even where one side has empty bins, 0 for equal distributions and at
    most 1 in base 2 (disjoint supports).
    """
    from scipy.special import rel_entr

    reference, current = as_count_pair(reference_counts, current_counts)
    if not (isinstance(base, int | float | np.floating) and base > 1.0 and math.isfinite(base)):
        raise InvalidInput(f"base must be a finite number above 1, such as 2 or e; got {base}")
    p = reference / reference.sum()
    q = current / current.sum()
    m = (p + q) / 2.0
    divergence = (float(np.sum(rel_entr(p, m))) + float(np.sum(rel_entr(q, m)))) / math.log(base)
    # rounding can step just outside [0, ln 2 / ln base], where the distance is defined
    bound = math.log(2.0) / math.log(base)
    return math.sqrt(min(max(divergence / 2.0, 0.0), bound))


def wasserstein(reference: ArrayLike, current: ArrayLike) -> float:
    """Wasserstein-1 (earth mover's) distance between two 1-D samples, in the data's units.

    NaN are dropped; infinite values are refused, since any distance to them is infinite.
    """
    return _wasserstein(
        as_sample(reference, "reference", finite=True),
        as_sample(current, "current", finite=True),
    )


def spread(reference: ArrayLike) -> float:
    """The reference's scale, used to make Wasserstein distances comparable across columns.

    The standard deviation; where that is not finite (infinities, overflow), the
    interquartile range / 1.349 (the standard deviation of a normal with that IQR); 0.0
    when the reference is constant or has no finite scale, which callers read as
    "constant column".
    """
    return _spread(as_sample(reference, "reference"))


def normalized_wasserstein(reference: ArrayLike, current: ArrayLike) -> float:
    """Wasserstein distance in units of the reference's `spread`.

    A constant reference has no scale: the result is 0 when the current sample is that
    same constant and inf otherwise.
    """
    reference_values = as_sample(reference, "reference", finite=True)
    distance = _wasserstein(reference_values, as_sample(current, "current", finite=True))
    scale = _spread(reference_values)
    if scale == 0.0:
        return 0.0 if distance == 0.0 else math.inf
    return distance / scale


def _wasserstein(reference: NDArray[np.float64], current: NDArray[np.float64]) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(reference, current))


def _spread(values: NDArray[np.float64]) -> float:
    if values.min() == values.max():
        return 0.0  # np.std of a constant can round to 1e-17 instead of 0
    with np.errstate(invalid="ignore", over="ignore"):
        deviation = float(np.std(values))
        if math.isfinite(deviation) and deviation > 0.0:
            return deviation
        upper, lower = np.quantile(values, [0.75, 0.25])
        iqr = float(upper - lower) / 1.349
    return iqr if math.isfinite(iqr) and iqr > 0.0 else 0.0
