"""Data quality of served traffic, against the model's signature and a reference sample.

Drift asks whether the data moved; quality asks whether it is broken: more values missing
than the reference had, numbers outside anything the reference held, categories it never
had, values the signature refuses, duplicated rows. Each count comes with its share of
the rows and, for the rates, a Wilson interval, so a handful of rows is not an alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.models import Signature


@dataclass(frozen=True)
class ColumnQuality:
    """One column's problems in the current data; `issues` says which cross a limit."""

    name: str
    rows: int
    missing: int
    missing_rate: float
    missing_high: float  # upper end of the Wilson interval of the current missing rate
    reference_missing_rate: float | None
    out_of_range: int = 0
    unseen: int = 0
    invalid: int = 0  # values the signature refuses (wrong type, unknown category)
    examples: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QualityReport:
    rows: int
    duplicate_rows: int
    duplicate_keys: int
    columns: dict[str, ColumnQuality]

    @property
    def issues(self) -> list[str]:
        found = [f"{name}: {issue}" for name, c in self.columns.items() for issue in c.issues]
        if self.duplicate_rows:
            found.append(f"{self.duplicate_rows} duplicated row(s)")
        if self.duplicate_keys:
            found.append(f"{self.duplicate_keys} row(s) share a key with another")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "issues": self.issues}


def data_quality(
    current: pd.DataFrame,
    *,
    reference: pd.DataFrame | None = None,
    signature: Signature | None = None,
    key: str | Sequence[str] | None = None,
    max_missing_increase: float = 0.05,
    max_share: float = 0.01,
) -> QualityReport:
    """Check `current` against `signature` (types, categories, nulls) and `reference`.

    A column has an issue when its missing rate rises more than `max_missing_increase`
    above the reference's (its whole Wilson interval above it), or when more than
    `max_share` of its rows are out of the reference's range, unseen categories or refused
    by the signature.
    """
    import pandas as pd

    if not isinstance(current, pd.DataFrame):
        raise InvalidInput(f"current must be a pandas DataFrame, not {type(current).__name__}")
    if reference is not None and (missing := [c for c in current if c not in reference]):
        raise InvalidInput(f"the reference lacks column(s) {', '.join(map(str, missing))}")
    keys = [key] if isinstance(key, str) else list(key or [])
    if absent := [k for k in keys if k not in current]:
        raise InvalidInput(f"key column(s) {', '.join(absent)} are not in the data")
    specs = {c.name: c for c in (signature.columns or [] if signature is not None else [])}
    columns = {
        str(name): _column(
            current[name],
            None if reference is None else reference[name],
            specs.get(str(name)),
            max_missing_increase,
            max_share,
        )
        for name in current.columns
    }
    return QualityReport(
        rows=len(current),
        duplicate_rows=int(current.astype(str).duplicated().sum()) if len(current) else 0,
        duplicate_keys=int(current.duplicated(subset=keys, keep=False).sum()) if keys else 0,
        columns=columns,
    )


def _column(
    values: pd.Series,
    reference: pd.Series | None,
    spec: Any,
    max_missing_increase: float,
    max_share: float,
) -> ColumnQuality:
    import pandas as pd

    from modelyard.stats import proportion_interval

    rows = len(values)
    missing = int(values.isna().sum())
    low, high = proportion_interval(missing, rows) if rows else (0.0, 1.0)
    reference_rate = None if reference is None or not len(reference) else reference.isna().mean()
    issues, examples = [], []
    if reference_rate is not None and low > reference_rate + max_missing_increase:
        issues.append(
            f"{missing / rows:.1%} missing, up from {reference_rate:.1%} in the reference"
        )
    present = values.dropna()
    out_of_range = unseen = 0
    if reference is not None and len(present):
        known = reference.dropna()
        numeric = pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(
            present.dtype
        )
        if numeric and pd.api.types.is_numeric_dtype(known.dtype) and len(known):
            outside = (present < known.min()) | (present > known.max())
            out_of_range = int(outside.sum())
            if out_of_range > max_share * rows:
                issues.append(
                    f"{out_of_range} value(s) outside the reference's range "
                    f"[{known.min():g}, {known.max():g}]"
                )
                examples += [repr(v) for v in present[outside].head(3).tolist()]
        elif not numeric:
            new = ~present.astype(str).isin(set(known.astype(str)))
            unseen = int(new.sum())
            if unseen > max_share * rows:
                issues.append(f"{unseen} value(s) in categories the reference never had")
                examples += [repr(v) for v in present[new].astype(str).unique()[:3].tolist()]
    invalid = 0
    if spec is not None and rows:
        from modelyard.models._conform import row_problems

        reasons = row_problems([spec], values.to_frame())
        refused = reasons.notna() & values.notna().to_numpy()
        invalid = int(refused.sum())
        if invalid > max_share * rows:
            issues.append(f"{invalid} value(s) the model's signature refuses")
            examples += [str(r) for r in reasons[refused].head(2).tolist()]
    return ColumnQuality(
        name=str(values.name),
        rows=rows,
        missing=missing,
        missing_rate=missing / rows if rows else 0.0,
        missing_high=high,
        reference_missing_rate=None if reference_rate is None else float(reference_rate),
        out_of_range=out_of_range,
        unseen=unseen,
        invalid=invalid,
        examples=examples,
        issues=issues,
    )
