"""Turning array-likes into validated NumPy arrays, with errors that say what to pass."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


def as_float_array(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """`values` as a 1-D float array; missing values (None, pandas NA) become NaN."""
    to_numpy = getattr(values, "to_numpy", None)
    try:
        if callable(to_numpy) and not isinstance(values, np.ndarray):
            # pandas' nullable columns refuse a float conversion unless told what NA becomes
            try:
                array = np.asarray(to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
            except TypeError:
                array = np.asarray(to_numpy(), dtype=np.float64)
        else:
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must hold numbers; converting it failed: {exc}") from None
    if array.ndim != 1:
        raise InvalidInput(f"{name} must be one-dimensional; got shape {array.shape}")
    return array


def as_sample(values: ArrayLike, name: str, *, finite: bool = False) -> NDArray[np.float64]:
    """The numbers of `values` with NaN dropped; at least one must remain."""
    array = as_float_array(values, name)
    kept = array[~np.isnan(array)]
    if kept.size == 0:
        if array.size == 0:
            raise InvalidInput(f"{name} is empty; pass at least one value")
        raise InvalidInput(f"{name} holds only NaN ({array.size} values); pass at least one number")
    if finite:
        infinite = int(np.count_nonzero(np.isinf(kept)))
        if infinite:
            raise InvalidInput(
                f"{name} holds {infinite} infinite value(s); drop or clip them before this call"
            )
    return kept


def as_counts(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Counts per bin or category: 1-D, non-empty, finite, non-negative, positive total."""
    counts = as_float_array(values, name)
    if counts.size == 0:
        raise InvalidInput(f"{name} is empty; pass one count per bin or category")
    bad = np.flatnonzero(~np.isfinite(counts))
    if bad.size:
        raise InvalidInput(f"{name} has NaN or infinite counts at positions {_few(bad)}")
    negative = np.flatnonzero(counts < 0)
    if negative.size:
        raise InvalidInput(
            f"{name} has negative counts at positions {_few(negative)}; counts must be >= 0"
        )
    if counts.sum() <= 0:
        raise InvalidInput(f"{name} counts sum to 0; there is nothing to compare")
    return counts


def as_count_pair(
    reference: ArrayLike, current: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two count vectors over the same bins or categories."""
    reference_counts = as_counts(reference, "reference_counts")
    current_counts = as_counts(current, "current_counts")
    if reference_counts.shape != current_counts.shape:
        raise InvalidInput(
            f"reference_counts has {reference_counts.size} bins but current_counts has "
            f"{current_counts.size}; count both over the same bins or categories"
        )
    return reference_counts, current_counts


def check_probability(value: float, name: str) -> float:
    """A level strictly between 0 and 1, such as a confidence."""
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise InvalidInput(f"{name} must be strictly between 0 and 1 (such as 0.95); got {value}")
    return float(value)


def check_positive_int(value: int, name: str) -> int:
    """A count such as a number of bins or resamples."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _few(positions: NDArray[np.intp]) -> str:
    shown = ", ".join(str(int(i)) for i in positions[:5])
    return f"[{shown}, …]" if positions.size > 5 else f"[{shown}]"


def as_observations(values: ArrayLike, name: str, *, minimum: int = 1) -> NDArray[np.float64]:
    """`values` as a 1-D array of finite numbers, at least `minimum` of them.

    Unlike `as_sample`, NaN is refused rather than dropped: in a comparison (and above all a
    paired one) silently losing rows changes what is compared.
    """
    array = as_float_array(values, name)
    if array.size < minimum:
        if array.size == 0:
            raise InvalidInput(f"{name} is empty; pass at least {minimum} value(s)")
        raise InvalidInput(f"{name} has {array.size} value(s); this test needs at least {minimum}")
    if not bool(np.isfinite(array).all()):
        bad = np.flatnonzero(~np.isfinite(array))
        raise InvalidInput(
            f"{name} has NaN or infinite values at positions {_few(bad)}; drop those rows "
            "first (from both samples when they are paired)"
        )
    return array


def as_pairs(
    a: ArrayLike, b: ArrayLike, *, minimum: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two samples measured on the same rows: equal lengths, finite values."""
    x = as_observations(a, "a", minimum=minimum)
    y = as_observations(b, "b", minimum=minimum)
    if x.size != y.size:
        raise InvalidInput(
            f"a has {x.size} values but b has {y.size}; a paired test needs one value of "
            "each per row (use the unpaired test for independent samples)"
        )
    return x, y


def as_count(value: object, name: str) -> int:
    """A whole number of events or trials, >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInput(f"{name} must be a whole number >= 0; got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or number != math.floor(number):
        raise InvalidInput(f"{name} must be a whole number >= 0; got {value}")
    return int(number)


def as_rate_counts(successes: object, trials: object, arm: str) -> tuple[int, int]:
    """The successes and trials of one arm: whole numbers, trials > 0, successes <= trials."""
    k = as_count(successes, f"successes_{arm}")
    n = as_count(trials, f"n_{arm}")
    if n == 0:
        raise InvalidInput(f"n_{arm} is 0; arm {arm.upper()} needs at least one trial")
    if k > n:
        raise InvalidInput(f"successes_{arm} ({k}) exceed n_{arm} ({n})")
    return k, n


ALTERNATIVES = ("two-sided", "less", "greater")


def check_alternative(alternative: str) -> str:
    """'two-sided', or a one-sided 'less'/'greater' about B minus A."""
    if alternative not in ALTERNATIVES:
        raise InvalidInput(
            f"alternative must be 'two-sided', 'less' (B below A) or 'greater' (B above A); "
            f"got {alternative!r}"
        )
    return alternative


def check_positive(value: float, name: str) -> float:
    """A finite number > 0, such as a standard deviation or a ratio."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidInput(f"{name} must be a finite number > 0; got {value!r}")
    if not (math.isfinite(float(value)) and float(value) > 0.0):
        raise InvalidInput(f"{name} must be a finite number > 0; got {value}")
    return float(value)


def check_generator(rng: object) -> np.random.Generator:
    """A NumPy random generator, so that draws are reproducible from the caller's seed."""
    if not isinstance(rng, np.random.Generator):
        raise InvalidInput(
            f"rng must be a numpy.random.Generator, such as numpy.random.default_rng(42); "
            f"got {type(rng).__name__}"
        )
    return rng
