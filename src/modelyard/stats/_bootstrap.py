"""Bootstrap confidence intervals for any statistic of one or more samples."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, SupportsFloat

import numpy as np
from numpy.typing import ArrayLike, NDArray

from modelyard.errors import InvalidInput
from modelyard.stats._checks import as_float_array, check_positive_int, check_probability

Statistic = Callable[..., SupportsFloat]
Samples = list[NDArray[np.float64]]

# indices drawn per batch of resamples (8 bytes each): bounds memory on large samples
_BATCH_INDICES = 4_000_000


def bootstrap_interval(
    statistic: Statistic,
    *samples: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: Literal["percentile", "bca"] = "bca",
    seed: int | np.random.Generator | None = None,
) -> tuple[float, float]:
    """A two-sided confidence interval for `statistic(*samples)` by resampling the samples.

    `statistic` takes one array per sample and returns a number. Several samples of the
    same length are resampled *paired*, with the same indices (rows of one table, such as
    labels and predictions); samples of different lengths are resampled independently.

    "bca" (bias-corrected and accelerated) is second-order accurate and costs one extra
    evaluation per value (a jackknife), so prefer "percentile" for very large samples.
    Where the BCa correction is undefined (the observed statistic lies beyond every
    resampled one) the percentile interval is returned. When every resample gives the same
    value c (constant data), the interval is (c, c). A `seed` makes the interval
    reproducible; with the same seed the resamples are those of `scipy.stats.bootstrap`
    while `n_resamples` x the largest sample size stays within 4,000,000 (one batch).
    """
    arrays = [_as_bootstrap_sample(sample, index) for index, sample in enumerate(samples)]
    if not arrays:
        raise InvalidInput("bootstrap_interval needs at least one sample after the statistic")
    level = check_probability(confidence, "confidence")
    count = check_positive_int(n_resamples, "n_resamples")
    if method not in ("percentile", "bca"):
        raise InvalidInput(f"method must be 'percentile' or 'bca'; got {method!r}")
    paired = len(arrays) > 1 and len({array.size for array in arrays}) == 1
    rng = np.random.default_rng(seed)

    resampled = np.fromiter(
        (_evaluate(statistic, drawn) for drawn in _resamples(arrays, paired, count, rng)),
        dtype=np.float64,
        count=count,
    )
    if bool(np.all(resampled == resampled[0])):
        return float(resampled[0]), float(resampled[0])
    alpha = (1.0 - level) / 2.0
    levels = (alpha, 1.0 - alpha)
    if method == "bca":
        levels = _bca_levels(statistic, arrays, paired, resampled, alpha) or levels
    low, high = np.percentile(resampled, [100.0 * levels[0], 100.0 * levels[1]])
    return float(low), float(high)


def _as_bootstrap_sample(sample: ArrayLike, index: int) -> NDArray[np.float64]:
    name = f"sample {index}"
    array = as_float_array(sample, name)
    if array.size == 0:
        raise InvalidInput(f"{name} is empty; bootstrapping needs at least one value")
    if bool(np.isnan(array).any()):
        raise InvalidInput(f"{name} holds NaN; drop missing values before bootstrapping")
    return array


def _resamples(
    arrays: Samples, paired: bool, count: int, rng: np.random.Generator
) -> Iterator[Samples]:
    """Resampled copies of the samples, drawn in batches as `scipy.stats.bootstrap` does."""
    largest = max(array.size for array in arrays)
    batch = max(1, min(count, _BATCH_INDICES // largest))
    for start in range(0, count, batch):
        rows = min(batch, count - start)
        if paired:
            shared = rng.integers(0, arrays[0].size, (rows, arrays[0].size))
            indices = [shared] * len(arrays)
        else:
            indices = [rng.integers(0, array.size, (rows, array.size)) for array in arrays]
        for row in range(rows):
            yield [array[index[row]] for array, index in zip(arrays, indices, strict=True)]


def _bca_levels(
    statistic: Statistic,
    arrays: Samples,
    paired: bool,
    resampled: NDArray[np.float64],
    alpha: float,
) -> tuple[float, float] | None:
    """The percentile levels BCa moves (alpha, 1 - alpha) to; None where undefined."""
    from scipy.special import ndtr, ndtri

    if min(array.size for array in arrays) < 2:
        raise InvalidInput(
            "method='bca' needs at least two values per sample (its jackknife leaves one "
            "out at a time); pass more data or use method='percentile'"
        )
    observed = _evaluate(statistic, arrays)
    below = np.count_nonzero(resampled < observed) + np.count_nonzero(resampled <= observed)
    bias = float(ndtri(below / (2 * resampled.size)))
    if not math.isfinite(bias):
        return None
    numerator = 0.0
    denominator = 0.0
    for jackknife in _jackknife(statistic, arrays, paired):
        n = float(jackknife.size)
        deviations = (n - 1.0) * (jackknife.mean() - jackknife)
        numerator += float(np.sum(deviations**3)) / n**3
        denominator += float(np.sum(deviations**2)) / n**2
    acceleration = numerator / denominator**1.5 / 6.0 if denominator > 0.0 else 0.0
    z_alpha = float(ndtri(alpha))
    levels = []
    for z in (z_alpha, -z_alpha):
        shifted = bias + z
        levels.append(float(ndtr(bias + shifted / (1.0 - acceleration * shifted))))
    if not all(math.isfinite(value) for value in levels):
        return None
    return levels[0], levels[1]


def _jackknife(
    statistic: Statistic, arrays: Samples, paired: bool
) -> Iterator[NDArray[np.float64]]:
    """Leave-one-out values of the statistic: per sample, or per row when paired."""
    groups = [list(range(len(arrays)))] if paired else [[index] for index in range(len(arrays))]
    for group in groups:
        size = arrays[group[0]].size
        values = np.empty(size)
        for left_out in range(size):
            drawn = list(arrays)
            for index in group:
                drawn[index] = np.delete(arrays[index], left_out)
            values[left_out] = _evaluate(statistic, drawn)
        yield values


def _evaluate(statistic: Statistic, arrays: Sequence[NDArray[np.float64]]) -> float:
    value = statistic(*arrays)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"statistic must return one number; it returned {type(value).__name__}"
        ) from None
    if not math.isfinite(number):
        raise InvalidInput(
            f"statistic returned {number} on a resample; bootstrap needs a statistic defined "
            "on every resample (mind ties and empty groups)"
        )
    return number
