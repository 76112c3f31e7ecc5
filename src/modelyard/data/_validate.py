"""Validation of a table against a schema: every violation at once, with counts and examples.

The schema is a `Signature` (dtypes, nullability, categories) or a `DatasetVersion` (its
signature and its observed column ranges). Dtypes are checked by kind (integer, float, bool,
text, datetime), value by value, so numbers written as text pass as numbers, like
`Signature.validate_input` reads them. Missing columns, nulls, ranges and categories are
checked by a pandera schema run lazily, on the values that have the right kind (a value of
the wrong kind is reported once, as `dtype`). Columns the schema does not name are warnings.
Row numbers are positions in the table, from 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelyard.data._versions import DatasetVersion
from modelyard.errors import InvalidInput
from modelyard.models._conform import as_frame
from modelyard.models._signature import ColumnSpec, Signature

if TYPE_CHECKING:
    import pandas as pd

ViolationKind = Literal["missing_column", "dtype", "null", "range", "category", "extra_column"]
Severity = Literal["error", "warning"]
EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    """One kind of problem in one column: how many rows fail, a few values and row numbers."""

    column: str
    kind: ViolationKind
    count: int
    message: str
    examples: tuple[Any, ...] = ()
    rows: tuple[int, ...] = ()
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "severity": self.severity,
            "count": self.count,
            "message": self.message,
            "examples": list(self.examples),
            "rows": list(self.rows),
        }


@dataclass(frozen=True)
class ValidationReport:
    """Every violation found; `ok` when none is an error (extra columns are warnings)."""

    rows: int
    violations: list[Violation] = field(default_factory=list)
    against: str | None = None  # the dataset version checked against, "name@3"

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "against": self.against,
            "rows": self.rows,
            "violations": [v.to_dict() for v in self.violations],
        }

    def raise_for_violations(self) -> None:
        """Raise `InvalidInput` summarising the errors, if any."""
        if self.ok:
            return
        what = f" of {self.against}" if self.against else ""
        summary = "; ".join(f"column {v.column!r}: {v.message}" for v in self.errors)
        raise InvalidInput(f"{len(self.errors)} schema violation(s){what}: {summary}")


def validate(data: Any, schema: Signature | DatasetVersion) -> ValidationReport:
    """Check a table (DataFrame, records, dict of columns) against `schema`."""
    frame = as_frame(data)
    if frame is None:
        raise InvalidInput("validate takes a table (a DataFrame, records or a dict of columns)")
    if isinstance(schema, DatasetVersion):
        columns, ranges, against = schema.columns, schema.ranges, schema.ref
    elif isinstance(schema, Signature):
        if schema.columns is None:
            raise InvalidInput("validate needs a table signature, not a tensor signature")
        columns, ranges, against = list(schema.columns), {}, None
    else:
        raise InvalidInput(
            f"validate against a Signature or a DatasetVersion, not {type(schema).__name__}"
        )
    return ValidationReport(
        rows=len(frame), violations=check_frame(frame, columns, ranges), against=against
    )


def check_frame(
    frame: pd.DataFrame, columns: Sequence[ColumnSpec], ranges: Mapping[str, Mapping[str, Any]]
) -> list[Violation]:
    """Every violation of `columns` (and `ranges`) in `frame`, by column order then kind."""
    import pandas as pd

    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise InvalidInput("the table has duplicate column names; rename them first")
    table = frame.set_axis(names, axis=1).reset_index(drop=True)
    expected = {c.name for c in columns}
    found: list[Violation] = []
    coerced: dict[str, pd.Series] = {}
    wrong: dict[str, pd.Series] = {}
    for spec in columns:
        if spec.name not in table.columns:
            continue
        values, failing = _coerce(table[spec.name], spec.dtype)
        coerced[spec.name], wrong[spec.name] = values, failing
        if failing.any():
            found.append(_dtype_violation(spec, table[spec.name], failing))
    checked = pd.DataFrame(coerced, index=table.index)
    found += _pandera_violations(checked, columns, ranges, wrong)
    found += [
        Violation(n, "extra_column", len(table), "not in the schema", severity="warning")
        for n in names
        if n not in expected
    ]
    order: dict[str, int] = {}
    for name in [c.name for c in columns] + names:
        order.setdefault(name, len(order))
    kinds = list(ViolationKind.__args__)  # type: ignore[attr-defined]
    return sorted(found, key=lambda v: (order.get(v.column, 0), kinds.index(v.kind)))


# -- dtypes ----------------------------------------------------------------------------------


def family(dtype: str) -> str:
    """The kind of a signature dtype: integer, float, bool, text, datetime or itself."""
    if dtype.startswith(("int", "uint")):
        return "integer"
    if dtype.startswith("float"):
        return "float"
    if dtype == "bool":
        return "bool"
    if dtype in ("string", "str", "category", "object"):
        return "text"
    if dtype.startswith("datetime64"):
        return "datetime"
    return dtype


def _coerce(series: pd.Series, dtype: str) -> tuple[pd.Series, pd.Series]:
    """`series` as values of the spec's kind (NaN where not), and the rows of the wrong kind."""
    import numpy as np
    import pandas as pd

    present = series.notna()
    kind = family(dtype)
    is_bool = pd.api.types.is_bool_dtype(series.dtype)
    if kind in ("integer", "float"):
        if is_bool or pd.api.types.is_datetime64_any_dtype(series.dtype):
            return pd.Series(np.nan, index=series.index), present
        numbers = pd.to_numeric(series, errors="coerce").astype("float64")
        failing = present & numbers.isna()
        if kind == "integer":
            failing |= present & numbers.notna() & np.isfinite(numbers) & (numbers % 1 != 0)
        return numbers.mask(failing), failing
    if kind == "bool":
        if is_bool:
            return series, pd.Series(False, index=series.index)
        failing = present & ~series.isin([True, False, 0, 1])
        return series.mask(failing), failing
    if kind == "text":
        if _is_text(series):
            return series, pd.Series(False, index=series.index)
        return series.mask(present), present
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return _utc_naive(series), pd.Series(False, index=series.index)
        if pd.api.types.is_numeric_dtype(series.dtype):
            return pd.Series(pd.NaT, index=series.index), present
        times = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        failing = present & times.isna()
        return _utc_naive(times), failing
    return series, pd.Series(False, index=series.index)


def _is_text(series: pd.Series) -> bool:
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype | pd.StringDtype):
        return True
    if series.dtype == object:
        return pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")
    return False


def _utc_naive(series: pd.Series) -> pd.Series:
    if getattr(series.dtype, "tz", None) is not None:
        naive: pd.Series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return naive
    return series


def _dtype_violation(spec: ColumnSpec, series: pd.Series, failing: pd.Series) -> Violation:
    rows = [int(i) for i in failing[failing].index[:EXAMPLES]]
    count = int(failing.sum())
    return Violation(
        spec.name,
        "dtype",
        count,
        f"{count} value(s) are not {spec.dtype}",
        tuple(plain(series.iloc[i]) for i in rows),
        tuple(rows),
    )


# -- pandera ---------------------------------------------------------------------------------


def _pandera_violations(
    checked: pd.DataFrame,
    columns: Sequence[ColumnSpec],
    ranges: Mapping[str, Mapping[str, Any]],
    wrong: Mapping[str, pd.Series],
) -> list[Violation]:
    """Missing columns, nulls, ranges and categories, from pandera's failure cases."""
    try:
        import pandera.pandas as pa
        from pandera.errors import SchemaErrors
    except ImportError:  # pragma: no cover - the [data] extra missing
        from modelyard.errors import MissingDependency

        raise MissingDependency("validation needs pandera: pip install 'modelyard[data]'") from None
    schema = pa.DataFrameSchema(
        {spec.name: pa.Column(None, nullable=spec.nullable, checks=_checks(spec, ranges))
         for spec in columns},
        strict=False,
    )  # fmt: skip
    try:
        schema.validate(checked, lazy=True)
    except SchemaErrors as exc:
        specs = {c.name: c for c in columns}
        return _violations(exc.failure_cases, specs, wrong, len(checked))
    return []


def _checks(spec: ColumnSpec, ranges: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    import pandas as pd
    import pandera.pandas as pa

    checks = []
    kind = family(spec.dtype)
    bounds = ranges.get(spec.name)
    if bounds is not None and kind in ("integer", "float"):
        checks.append(pa.Check.in_range(float(bounds["min"]), float(bounds["max"])))
    elif bounds is not None and kind == "datetime":
        low, high = (pd.Timestamp(bounds[k]) for k in ("min", "max"))
        low, high = (t.tz_convert("UTC").tz_localize(None) if t.tz else t for t in (low, high))
        checks.append(pa.Check.in_range(low, high))
    if spec.categories is not None:
        checks.append(pa.Check.isin(list(spec.categories)))
    return checks


_KINDS: dict[str, ViolationKind] = {
    "column_in_dataframe": "missing_column",
    "not_nullable": "null",
    "in_range": "range",
    "isin": "category",
}


def _violations(
    cases: pd.DataFrame,
    specs: Mapping[str, ColumnSpec],
    wrong: Mapping[str, pd.Series],
    rows_in: int,
) -> list[Violation]:
    found = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        kind = _KINDS.get(str(check).split("(")[0])
        if kind is None:
            raise AssertionError(f"unexpected pandera check {check!r}")
        if kind == "missing_column":
            for name in group["failure_case"]:
                found.append(Violation(str(name), kind, rows_in, f"missing ({specs[name].dtype})"))
            continue
        rows = [int(i) for i in group["index"]]
        examples = tuple(plain(v) for v in group["failure_case"][:EXAMPLES])
        if kind == "null" and str(column) in wrong:  # a value of the wrong kind counts once
            failing = wrong[str(column)]
            rows = [i for i in rows if not failing.iloc[i]]
            if not rows:
                continue
        found.append(
            Violation(
                str(column),
                kind,
                len(rows),
                _message(kind, len(rows), specs[str(column)], str(check)),
                () if kind == "null" else examples,
                tuple(rows[:EXAMPLES]),
            )
        )
    return found


def _message(kind: ViolationKind, count: int, spec: ColumnSpec, check: str) -> str:
    if kind == "null":
        return f"{count} missing value(s) in a column that allows none"
    if kind == "range":
        low, _, high = check.removeprefix("in_range(").removesuffix(")").partition(", ")
        return f"{count} value(s) outside [{low}, {high}]"
    return f"{count} value(s) not among the {len(spec.categories or [])} known categories"


def plain(value: Any) -> Any:
    """A cell as JSON-ready Python: numbers, text, ISO times; None for missing."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp | np.datetime64):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
