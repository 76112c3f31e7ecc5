"""Bootstrap intervals: SciPy's interval for the same resamples, exact on degenerate data."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import bootstrap_interval

rng = np.random.default_rng(11)
SKEWED = rng.gamma(2.0, size=300)
OTHER = rng.normal(1.0, 2.0, size=200)
NOISY_COPY = SKEWED + rng.normal(size=300)


Method = Literal["percentile", "bca"]


def mean(x: NDArray[np.float64], axis: int = -1) -> Any:
    return np.mean(x, axis=axis)


def mean_difference(x: NDArray[np.float64], y: NDArray[np.float64], axis: int = -1) -> Any:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def correlation(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def scipy_interval(
    samples: tuple[NDArray[np.float64], ...], statistic: object, method: str, seed: int, **kw: bool
) -> tuple[float, float]:
    result = stats.bootstrap(
        samples, statistic, n_resamples=2_000, method=method, rng=np.random.default_rng(seed), **kw
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_one_sample_interval_equals_scipy_bootstrap_for_the_same_seed(method: Method) -> None:
    expected = scipy_interval((SKEWED,), mean, method, seed=7)
    interval = bootstrap_interval(np.mean, SKEWED, method=method, seed=7)
    assert interval == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_independent_samples_of_different_lengths_equal_scipy_bootstrap(method: Method) -> None:
    expected = scipy_interval((SKEWED, OTHER), mean_difference, method, seed=8)
    interval = bootstrap_interval(mean_difference, SKEWED, OTHER, method=method, seed=8)
    assert interval == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_samples_of_equal_length_are_resampled_paired_as_in_scipy(method: Method) -> None:
    expected = scipy_interval(
        (SKEWED, NOISY_COPY), correlation, method, seed=9, paired=True, vectorized=False
    )
    interval = bootstrap_interval(correlation, SKEWED, NOISY_COPY, method=method, seed=9)
    assert interval == pytest.approx(expected, rel=1e-9)


def test_interval_agrees_with_scipy_within_monte_carlo_error_for_other_seeds() -> None:
    expected = scipy_interval((SKEWED,), mean, "bca", seed=1)
    interval = bootstrap_interval(np.mean, SKEWED, seed=np.random.default_rng(2))
    width = expected[1] - expected[0]
    assert interval == pytest.approx(expected, abs=0.1 * width)


def test_interval_is_reproducible_for_a_seed() -> None:
    first = bootstrap_interval(np.median, SKEWED, seed=3)
    assert bootstrap_interval(np.median, SKEWED, seed=3) == first


def test_interval_narrows_with_lower_confidence() -> None:
    wide = bootstrap_interval(np.mean, SKEWED, confidence=0.99, seed=4)
    narrow = bootstrap_interval(np.mean, SKEWED, confidence=0.8, seed=4)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_constant_data_gives_a_point_interval(method: Method) -> None:
    constant = np.full(50, 2.5)
    assert bootstrap_interval(np.mean, constant, method=method, seed=0) == (2.5, 2.5)
    assert bootstrap_interval(np.mean, [4.0], method=method, seed=0) == (4.0, 4.0)


def test_bca_falls_back_to_percentile_where_it_is_undefined() -> None:
    # a resample almost never holds all 40 distinct values: every resampled count is below
    # the observed one, so the bias correction is infinite
    def distinct(x: NDArray[np.float64]) -> float:
        return float(np.unique(x).size)

    values = np.arange(40.0)
    percentile = bootstrap_interval(distinct, values, method="percentile", seed=5)
    assert bootstrap_interval(distinct, values, method="bca", seed=5) == percentile
    assert percentile[1] < 40.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_interval(np.mean), "needs at least one sample"),
        (lambda: bootstrap_interval(np.mean, []), "sample 0 is empty"),
        (lambda: bootstrap_interval(np.mean, [1.0, np.nan]), "sample 0 holds NaN"),
        (lambda: bootstrap_interval(np.mean, [1.0, 2.0], confidence=95), "strictly between"),
        (lambda: bootstrap_interval(np.mean, [1.0, 2.0], n_resamples=0), "positive integer"),
        (lambda: bootstrap_interval(np.mean, [1.0, 2.0], method="basic"), "'percentile' or"),
        (lambda: bootstrap_interval(lambda x: x, [1.0, 2.0]), "must return one number"),
        (lambda: bootstrap_interval(lambda x: np.nan, [1.0, 2.0]), "returned nan"),
        (lambda: bootstrap_interval(mean_difference, [1.0, 2.0], [3.0]), "at least two values"),
    ],
)
def test_bootstrap_interval_refuses_bad_input(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(InvalidInput, match=message):
        call()
