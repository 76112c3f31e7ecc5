"""Hodges–Lehmann effects on samples too large to form every pair: the same order statistics."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from modelyard.stats import mann_whitney_test, wilcoxon_test

rng = np.random.default_rng(3)


def ranks(pairs: int, sd: float, level: float = 0.95) -> tuple[int, int]:
    c = math.floor(pairs / 2 + 0.5 - stats.norm.ppf(0.5 + level / 2) * sd)
    return c, pairs + 1 - c


def continuous(size: int) -> NDArray[np.float64]:
    return rng.lognormal(0.0, 1.0, size)


def tied(size: int) -> NDArray[np.float64]:
    return rng.integers(0, 6, size).astype(float)


@pytest.mark.parametrize("draw", [continuous, tied])
def test_shift_of_millions_of_pairs_equals_the_order_statistics_of_all_differences(
    draw: Callable[[int], NDArray[np.float64]],
) -> None:
    a, b = draw(2_100), draw(1_600) * 1.1  # 3.4 million differences: found by bisection
    differences = np.sort(np.subtract.outer(b, a).ravel())
    pairs = differences.size
    low, high = ranks(pairs, math.sqrt(pairs * (a.size + b.size + 1) / 12))
    result = mann_whitney_test(a, b)
    assert result.effect == pytest.approx(np.median(differences), rel=1e-12, abs=1e-12)
    assert (result.low, result.high) == pytest.approx(
        (differences[low - 1], differences[high - 1]), rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize("draw", [continuous, tied])
def test_pseudo_median_of_millions_of_walsh_averages_equals_their_order_statistics(
    draw: Callable[[int], NDArray[np.float64]],
) -> None:
    a = draw(2_600)
    b = a + draw(2_600) - 1.0  # 3.4 million Walsh averages
    d = b - a
    n = d.size
    walsh = np.sort((np.add.outer(d, d) / 2.0)[np.triu_indices(n)])
    low, high = ranks(walsh.size, math.sqrt(n * (n + 1) * (2 * n + 1) / 24))
    result = wilcoxon_test(a, b)
    assert result.effect == pytest.approx(np.median(walsh), rel=1e-12, abs=1e-12)
    assert (result.low, result.high) == pytest.approx(
        (walsh[low - 1], walsh[high - 1]), rel=1e-12, abs=1e-12
    )


def test_shift_of_large_samples_needs_memory_linear_in_the_samples() -> None:
    # 4e10 differences would need 320 GB if formed
    a = rng.normal(0.0, 1.0, 200_000)
    b = rng.normal(0.02, 1.0, 200_000)
    result = mann_whitney_test(a, b)
    assert result.low < result.effect < result.high
    assert result.effect == pytest.approx(0.02, abs=0.02)
