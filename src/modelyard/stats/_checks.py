"""Turning array-likes into validated NumPy arrays, with errors that say what to pass."""

from __future__ import annotations

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
