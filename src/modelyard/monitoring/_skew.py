"""Training–serving skew at the value level: the same rows, offline and as served.

When the rows a model was served can be rebuilt offline (the feature pipeline run again
for the same keys), every feature should match value for value. `skew` joins both on the
key and counts, per feature, the rows whose values differ: a bug in one of the two
pipelines shows as a mismatch rate well above zero, long before it shows as drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

_EXAMPLES = 5


@dataclass(frozen=True)
class ColumnSkew:
    """How often one feature differs between the offline and the served value of a row."""

    name: str
    compared: int
    mismatches: int
    rate: float
    low: float  # Wilson interval of the rate
    high: float
    skewed: bool
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SkewReport:
    """Rows matched by key, rows only one side has, and every feature's mismatch rate."""

    key: list[str]
    offline_rows: int
    served_rows: int
    matched: int
    offline_only: int
    served_only: int
    max_rate: float
    columns: dict[str, ColumnSkew]

    @property
    def skewed_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.skewed]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skewed_columns": self.skewed_columns}


def skew(
    offline: pd.DataFrame,
    served: pd.DataFrame,
    *,
    key: str | Sequence[str],
    columns: Sequence[str] | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_rate: float = 0.0,
) -> SkewReport:
    """Compare `served` feature values with `offline` ones for the same `key`.

    Numbers match within `rtol`/`atol`; anything else must be equal; missing matches only
    missing. A feature is skewed when its mismatch rate exceeds `max_rate` (default: any).
    """
    from modelyard.stats import proportion_interval

    keys = [key] if isinstance(key, str) else list(key)
    names = _columns(offline, served, keys, columns)
    for label, frame in (("offline", offline), ("served", served)):
        duplicated = frame.duplicated(subset=keys, keep=False)
        if duplicated.any():
            shown = frame.loc[duplicated, keys].head(3).to_dict("records")
            raise InvalidInput(
                f"{label} has {int(duplicated.sum())} rows sharing a key, e.g. {shown}: "
                "a key must name one row on each side"
            )
    joined = offline[keys + names].merge(
        served[keys + names],
        on=keys,
        how="outer",
        suffixes=("__offline", "__served"),
        indicator=True,
    )
    both = joined[joined["_merge"] == "both"]
    results = {}
    for name in names:
        left, right = both[f"{name}__offline"], both[f"{name}__served"]
        differs = _differs(left, right, rtol, atol)
        count = int(differs.sum())
        compared = len(both)
        low, high = proportion_interval(count, compared) if compared else (0.0, 1.0)
        rate = count / compared if compared else 0.0
        examples = [
            {
                **{k: _plain(row[k]) for k in keys},
                "offline": _plain(row[f"{name}__offline"]),
                "served": _plain(row[f"{name}__served"]),
            }
            for _, row in both[differs].head(_EXAMPLES).iterrows()
        ]
        results[name] = ColumnSkew(
            name, compared, count, rate, low, high, skewed=rate > max_rate, examples=examples
        )
    return SkewReport(
        key=keys,
        offline_rows=len(offline),
        served_rows=len(served),
        matched=len(both),
        offline_only=int((joined["_merge"] == "left_only").sum()),
        served_only=int((joined["_merge"] == "right_only").sum()),
        max_rate=max_rate,
        columns=results,
    )


def _columns(
    offline: pd.DataFrame, served: pd.DataFrame, keys: list[str], columns: Sequence[str] | None
) -> list[str]:
    import pandas as pd

    for label, frame in (("offline", offline), ("served", served)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInput(f"{label} must be a pandas DataFrame, not {type(frame).__name__}")
        if missing := [k for k in keys if k not in frame.columns]:
            raise InvalidInput(f"{label} lacks the key column(s) {', '.join(missing)}")
    if columns is not None:
        names = list(columns)
    else:
        names = [c for c in offline.columns if c in served.columns and c not in keys]
    if absent := [c for c in names if c not in offline.columns or c not in served.columns]:
        raise InvalidInput(f"column(s) {', '.join(absent)} are not on both sides")
    if not names:
        raise InvalidInput("offline and served share no feature column besides the key")
    return names


def _differs(left: pd.Series, right: pd.Series, rtol: float, atol: float) -> pd.Series:
    import pandas as pd

    left_missing, right_missing = left.isna(), right.isna()
    numeric = pd.api.types.is_numeric_dtype(left.dtype) and pd.api.types.is_numeric_dtype(
        right.dtype
    )
    if numeric:
        a = left.to_numpy(dtype=np.float64, na_value=np.nan)
        b = right.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            equal = np.isclose(a, b, rtol=rtol, atol=atol)
        values_differ = pd.Series(~equal, index=left.index)
    else:
        values_differ = left.astype(str) != right.astype(str)
    return (left_missing != right_missing) | (~left_missing & ~right_missing & values_differ)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value if isinstance(value, int | float | str | bool) else str(value)
