"""Hodges–Lehmann estimates: the effects that the rank tests measure, on the data's scale.

The shift between two samples is the median of all differences b_j - a_i, the pseudo-median
of paired differences the median of all their pairwise averages (Walsh averages). Both
have distribution-free intervals at order statistics of those same values. There are
n_a x n_b (or n(n + 1)/2) of them: up to a few million they are formed and partitioned;
beyond, an order statistic is found by bisection on its value, counting the values below
a candidate with binary searches in O(n log n), so memory stays linear in the samples.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Floats = NDArray[np.float64]

_DIRECT_PAIRS = 2_000_000  # up to this many values, all of them are formed (16 MB)


def shift_estimate(a: Floats, b: Floats, level: float) -> tuple[float, float, float]:
    """The median of b_j - a_i and Moses' interval at the two-sided `level`."""
    pairs = a.size * b.size
    sd = math.sqrt(pairs * (a.size + b.size + 1) / 12.0)  # of the Mann-Whitney U
    # b_j - a_i are the sums of two sorted arrays: b and -a
    return _estimate(np.sort(b), np.sort(-a), False, pairs, sd, level, 1.0)


def pseudo_median(differences: Floats, level: float) -> tuple[float, float, float]:
    """The median of the Walsh averages (d_i + d_j) / 2, i <= j, and its interval."""
    n = differences.size
    pairs = n * (n + 1) // 2
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)  # of the signed-rank statistic
    d = np.sort(differences)
    return _estimate(d, d, True, pairs, sd, level, 0.5)


def _estimate(
    x: Floats, y: Floats, walsh: bool, pairs: int, sd: float, level: float, scale: float
) -> tuple[float, float, float]:
    from scipy.special import ndtri

    middle = [(pairs + 1) // 2] if pairs % 2 else [pairs // 2, pairs // 2 + 1]
    # the interval is [v_(c), v_(pairs + 1 - c)], c the rank test's lower critical value
    z = float(ndtri(0.5 + level / 2.0))
    c = math.floor(pairs / 2.0 + 0.5 - z * sd)
    ends = [c, pairs + 1 - c] if c >= 1 else []
    values = _ranked_sums(x, y, walsh, middle + ends)
    estimate = scale * sum(values[: len(middle)]) / len(middle)
    if not ends:  # too few values to reach the level
        return estimate, -math.inf, math.inf
    return estimate, scale * values[-2], scale * values[-1]


def _ranked_sums(x: Floats, y: Floats, walsh: bool, ranks: list[int]) -> list[float]:
    """The values of rank k (1-based) among x_i + y_j (only i <= j when `walsh`)."""
    pairs = x.size * (x.size + 1) // 2 if walsh else x.size * y.size
    if pairs <= _DIRECT_PAIRS:
        sums = np.add.outer(x, y)
        flat = sums[np.triu_indices(x.size)] if walsh else sums.ravel()
        indices = [k - 1 for k in ranks]
        partitioned = np.partition(flat, indices)
        return [float(partitioned[i]) for i in indices]
    return [_select(x, y, walsh, pairs, k) for k in ranks]


def _select(x: Floats, y: Floats, walsh: bool, pairs: int, k: int) -> float:
    low, high = float(x[0] + y[0]), float(x[-1] + y[-1])
    if low == high:
        return low
    span = high - low
    magnitude = float(np.abs(x).max() + np.abs(y).max())
    tolerance = 1e-12 * max(magnitude, span)
    # rounding in s - x_i can move a count at the very edges: pad the starting bracket
    lo, hi = low - span - 1e-9 * magnitude, high + span + 1e-9 * magnitude
    count_lo, count_hi = 0, pairs
    limit = 4 * (x.size + y.size)
    while count_hi - count_lo > limit and hi - lo > tolerance:
        mid = lo + (hi - lo) / 2.0
        below = _count_at_most(x, y, walsh, mid)
        if below >= k:
            hi, count_hi = mid, below
        else:
            lo, count_lo = mid, below
    starts, stops = _window(x, y, walsh, lo, hi)
    if count_hi - count_lo > limit:
        # many ties: every value in (lo, hi] is the same to 1e-12; return the smallest one
        rows = np.flatnonzero(stops > starts)
        return float((x[rows] + y[starts[rows]]).min())
    lengths = np.maximum(stops - starts, 0)
    rows = np.repeat(np.arange(x.size), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    window = np.sort(x[rows] + y[np.repeat(starts, lengths) + offsets])
    return float(window[min(max(k - count_lo - 1, 0), window.size - 1)])


def _count_at_most(x: Floats, y: Floats, walsh: bool, value: float) -> int:
    below = int(np.searchsorted(y, value - x, side="right").sum())
    if walsh:  # ordered pairs counted twice, the diagonal once
        below = (below + int(np.searchsorted(x, value / 2.0, side="right"))) // 2
    return below


def _window(
    x: Floats, y: Floats, walsh: bool, lo: float, hi: float
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Per row i, the columns j whose sum lies in (lo, hi]."""
    starts = np.searchsorted(y, lo - x, side="right")
    stops = np.searchsorted(y, hi - x, side="right")
    if walsh:
        starts = np.maximum(starts, np.arange(x.size))
    return starts, stops
