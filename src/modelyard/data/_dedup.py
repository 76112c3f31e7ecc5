"""Deduplication: one row per distinct row, or per key, with a report of what was dropped.

Missing values are equal to each other here (two rows with NaN in the same key column are
duplicates). The rows kept come back in their input order, with their input index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

Keep = Literal["first", "last"]


@dataclass(frozen=True)
class DedupReport:
    """Counts of one deduplication: `rows_in - rows_dropped == rows_out`; a duplicate group
    is a key (or whole row) occurring more than once."""

    rows_in: int
    rows_out: int
    duplicate_groups: int
    rows_dropped: int
    keys: tuple[str, ...] | None
    keep: Keep
    order_by: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "duplicate_groups": self.duplicate_groups,
            "rows_dropped": self.rows_dropped,
            "keys": None if self.keys is None else list(self.keys),
            "keep": self.keep,
            "order_by": None if self.order_by is None else list(self.order_by),
        }


def deduplicate(
    data: pd.DataFrame,
    keys: str | Sequence[str] | None = None,
    *,
    keep: Keep = "last",
    order_by: str | Sequence[str] | None = None,
) -> tuple[pd.DataFrame, DedupReport]:
    """Drop duplicate rows: equal in every column (`keys` None) or in the `keys` columns.

    Of each group the `keep` row is kept: the first or last in input order, or, with
    `order_by`, in the order of those columns (ascending, stable, missing last): keep="last"
    with order_by="updated_at" keeps each key's latest update.
    """
    import numpy as np
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(f"deduplicate takes a pandas DataFrame, not {type(data).__name__}")
    if keep not in ("first", "last"):
        raise InvalidInput(f"keep must be 'first' or 'last', not {keep!r}")
    subset = _columns(data, "keys", keys)
    ordering = _columns(data, "order_by", order_by)
    positions = np.arange(len(data))
    if ordering:
        by_order = data.reset_index(drop=True)
        positions = by_order.sort_values(ordering, kind="stable").index.to_numpy()
    ordered = data.iloc[positions]
    dropped = ordered.duplicated(subset=subset, keep=keep).to_numpy()
    kept = np.sort(positions[~dropped])
    repeated = data.duplicated(subset=subset, keep=False)
    groups = int((repeated & ~data.duplicated(subset=subset, keep="first")).sum())
    report = DedupReport(
        rows_in=len(data),
        rows_out=len(kept),
        duplicate_groups=groups,
        rows_dropped=len(data) - len(kept),
        keys=None if keys is None else tuple(subset or ()),
        keep=keep,
        order_by=tuple(ordering) if ordering else None,
    )
    return data.iloc[kept], report


def _columns(
    data: pd.DataFrame, option: str, given: str | Sequence[str] | None
) -> list[str] | None:
    if given is None:
        return None
    names = [given] if isinstance(given, str) else list(given)
    if not names:
        raise InvalidInput(f"{option} names no column; pass None or at least one column")
    if unknown := [n for n in names if n not in data.columns]:
        raise InvalidInput(
            f"{option} names unknown column(s) {unknown}; the data has: "
            + ", ".join(map(str, data.columns))
        )
    return names
