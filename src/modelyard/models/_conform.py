"""Conforming prediction input to a signature: checked, then cast to the model's dtypes.

`Signature.validate_input` delegates here, passing its specs, so this module needs `_signature`
only for type hints. Inference in `_signature` shares the input readers (`as_frame`, `as_array`)
and the message helpers (`quoted`, `duplicated`, `LISTED`) defined here.

`conform_table` and `conform_tensor` stop at the first problem, as a request should. Batch
scoring instead sets bad rows aside and scores the rest: `row_problems` and
`tensor_row_problems` give every row's reasons at once, from the same checks.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from modelyard.models._signature import ColumnSpec, TensorSpec

_NUMERIC = frozenset(
    {"bool", "float16", "float32", "float64"}
    | {f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)}
)
LISTED = 5


# -- validation: tables --------------------------------------------------------------------


def conform_table(columns: list[ColumnSpec], data: Any) -> pd.DataFrame:
    import pandas as pd

    expected = [c.name for c in columns]
    frame = _table_frame(data, expected)
    given = [str(c) for c in frame.columns]
    check_columns(columns, given)
    position = {name: i for i, name in enumerate(given)}
    cast = {c.name: _cast_column(frame.iloc[:, position[c.name]], c) for c in columns}
    # When nothing changed, a copy keeps the caller's memory layout, so the model computes
    # bit-identical predictions (BLAS sums a column-major frame in another order).
    unchanged = list(frame.columns) == expected and all(
        cast[name].dtype == frame.dtypes.iloc[i] for i, name in enumerate(expected)
    )
    return frame.copy() if unchanged else pd.DataFrame(cast, index=frame.index)


def check_columns(columns: list[ColumnSpec], given: Sequence[str]) -> None:
    """Raise `InvalidInput` naming duplicate, missing or unexpected input columns."""
    expected = [c.name for c in columns]
    if duplicates := duplicated(given):
        raise InvalidInput(f"the input has duplicate column(s) {quoted(duplicates)}")
    problems = []
    if missing := [n for n in expected if n not in given]:
        problems.append(f"missing column(s) {quoted(missing)}")
    if extra := [n for n in given if n not in expected]:
        problems.append(f"unexpected column(s) {quoted(extra)}")
    if problems:
        raise InvalidInput(f"{'; '.join(problems)}; the model expects: {', '.join(expected)}")


def _table_frame(data: Any, names: list[str]) -> pd.DataFrame:
    """Prediction input as a frame; rows given as lists are matched to columns by position."""
    import numpy as np
    import pandas as pd

    if (frame := as_frame(data)) is not None:
        return frame
    if isinstance(data, list | tuple) and not data:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in names})
    rows = isinstance(data, list | tuple) and all(
        isinstance(r, list | tuple | np.ndarray) for r in data
    )
    if not (rows or (isinstance(data, np.ndarray) and data.ndim == 2)):
        raise InvalidInput(
            f"cannot read {type(data).__name__} as rows; pass a DataFrame, records, "
            "a dict of columns, or a list of rows"
        )
    for row, values in enumerate(data):
        if len(values) != len(names):
            raise InvalidInput(
                f"row {row} has {len(values)} values but the model expects {len(names)} "
                f"columns: {', '.join(names)}"
            )
    return pd.DataFrame(list(data), columns=names)


def _cast_column(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """One input column checked against its spec and cast to the model's dtype."""
    import pandas as pd

    series = _plain(series)
    missing = series.isna().to_numpy(dtype=bool)
    if missing.any() and not spec.nullable:
        raise InvalidInput(
            f"column {spec.name!r} has missing values ({_rows(missing)}) "
            "and the model does not accept them"
        )
    if spec.dtype in ("string", "category"):
        cast = _cast_text(series, spec, missing)
    elif spec.dtype.startswith("datetime64"):
        cast = _cast_datetime(series, spec)
    elif spec.dtype in _NUMERIC:
        cast = _cast_number(series, spec, missing)
    else:
        try:
            cast = series.astype(pd.api.types.pandas_dtype(spec.dtype))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"column {spec.name!r} expects {spec.dtype}: {exc}") from None
    if spec.categories is not None:
        _check_categories(cast, spec, missing)
    if spec.dtype == "category":
        cast = cast.astype(pd.CategoricalDtype(spec.categories))
    return cast


def _plain(series: pd.Series) -> pd.Series:
    """A categorical column as its plain values; others unchanged."""
    import pandas as pd

    return series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series


def _cast_number(series: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]) -> pd.Series:
    import numpy as np
    import pandas as pd

    values, bad = _number_values(series, spec, missing)
    if bad.any():
        raise _bad_value(spec, series, int(np.argmax(bad)))
    return pd.Series(values.astype(_number_target(spec, missing)), index=series.index)


def _number_values(
    series: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """A number column's values, and where a present value does not fit the spec's dtype."""
    import numpy as np

    values = _numbers(series, missing)
    bad = _unfit(values, np.dtype(spec.dtype))
    if values.dtype.kind == "f":
        bad |= np.isnan(values)  # text that is not a number
    bad &= ~missing
    return values, bad


def _number_target(spec: ColumnSpec, missing: npt.NDArray[Any]) -> np.dtype[Any]:
    """The dtype a number column is cast to: float64 for int and bool with missing values."""
    import numpy as np

    target = np.dtype(spec.dtype)
    return np.dtype(np.float64) if target.kind in "biu" and missing.any() else target


def _numbers(series: pd.Series, missing: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A column's values as a numeric array; NaN where missing or not a number."""
    import numpy as np
    import pandas as pd

    kind = series.dtype.kind
    if kind in "mM":
        return np.full(len(series), np.nan)
    if kind not in "biuf":
        series = pd.to_numeric(series, errors="coerce")
        kind = series.dtype.kind
    if missing.any() or kind not in "biuf":
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    dtype: Any = series.dtype
    return series.to_numpy(dtype=getattr(dtype, "numpy_dtype", dtype))


def _unfit(values: npt.NDArray[Any], target: np.dtype[Any]) -> npt.NDArray[np.bool_]:
    """Where `values` would change when cast to `target` (bool: 0/1; int: whole and in range)."""
    import numpy as np

    if target.kind == "b":
        return ~np.isin(values, (0, 1))
    if target.kind not in "iu" or values.dtype.kind == "b":
        return np.zeros(values.shape, dtype=bool)
    info = np.iinfo(target)
    fits = (values >= info.min) & (values <= info.max)
    if values.dtype.kind == "f":
        fits &= np.isfinite(values) & (np.floor(values) == values)
    return ~fits


def _cast_text(series: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]) -> pd.Series:
    import numpy as np

    if (bad := _not_text(series, spec, missing)).any():
        raise _bad_value(spec, series, int(np.argmax(bad)))
    return _text_values(series, spec, missing)


def _not_text(
    series: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]
) -> npt.NDArray[np.bool_]:
    """Where a `string` column holds a present value that is not text."""
    import numpy as np
    import pandas as pd

    if spec.dtype != "string" or isinstance(series.dtype, pd.StringDtype):
        return np.zeros(len(series), dtype=bool)
    values = series.to_numpy(dtype=object)
    text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    bad: npt.NDArray[np.bool_] = ~text & ~missing
    return bad


def _text_values(series: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]) -> pd.Series:
    import numpy as np
    import pandas as pd

    values = np.where(missing, np.nan, series.to_numpy(dtype=object))
    return pd.Series(
        values, index=series.index, dtype=_text_dtype() if spec.dtype == "string" else object
    )


def _cast_datetime(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    import pandas as pd

    try:
        parsed: pd.Series = pd.to_datetime(series, errors="raise")
        return parsed.astype(pd.api.types.pandas_dtype(spec.dtype))
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"column {spec.name!r} expects {spec.dtype} but holds values that are not dates: {exc}"
        ) from None


def _check_categories(cast: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]) -> None:
    allowed = spec.categories or []
    unknown = _unknown(cast, spec, missing)
    if unknown.any():
        values = {_scalar(v) for v in cast[unknown]}
        listed = sorted(values, key=lambda v: (type(v).__name__, v))
        raise InvalidInput(
            f"column {spec.name!r} has unknown categories {quoted(listed, LISTED)}; "
            f"allowed: {quoted(allowed, limit=20)}"
        )


def _unknown(cast: pd.Series, spec: ColumnSpec, skip: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Where a cast value outside `skip` is not one of the spec's categories."""
    unknown: npt.NDArray[np.bool_] = ~skip & ~cast.isin(spec.categories or []).to_numpy(dtype=bool)
    return unknown


# -- validation: tensors -------------------------------------------------------------------


def conform_tensor(spec: TensorSpec, data: Any) -> npt.NDArray[Any]:
    import numpy as np

    array = _shaped(spec, as_array(data))
    cast = _cast_array(array, spec.dtype)
    if cast.dtype.kind == "f" and not spec.nullable:
        nan_rows = np.isnan(cast).any(axis=tuple(range(1, cast.ndim)))
        if nan_rows.any():
            raise InvalidInput(
                f"input has NaN at {_rows(nan_rows)} and the model does not accept them"
            )
    return cast


def _shaped(spec: TensorSpec, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """`array` with its batch dimension, refused unless it has the spec's shape."""
    import numpy as np

    shape = spec.shape
    if array.ndim == 1 and len(shape) > 1 and array.shape[0] == 0:
        array = array.reshape(0, *(max(d, 0) for d in shape[1:]))
    elif array.ndim == len(shape) - 1 and list(array.shape) == shape[1:]:
        array = array[np.newaxis]  # one row without its batch dimension
    if array.ndim != len(shape) or any(
        d not in (-1, n) for d, n in zip(shape, array.shape, strict=True)
    ):
        raise InvalidInput(f"expected shape {tuple(shape)}, got {tuple(array.shape)}")
    return array


def _cast_array(array: npt.NDArray[Any], dtype: str) -> npt.NDArray[Any]:
    """A copy of `array` in `dtype`, refusing casts that would change a value."""
    import numpy as np
    import pandas as pd

    if dtype == "string":
        values = array.astype(object)
        bad = [i for i, v in enumerate(values.flat) if not isinstance(v, str)]
        if bad:
            raise _bad_element(values, bad[0], "text")
        return values
    numbers = array
    if array.dtype.kind not in "biuf":  # text or objects: read them the way columns are read
        flat = pd.Series(array.ravel(), dtype=object)
        missing = flat.isna().to_numpy(dtype=bool)
        numbers = _numbers(flat, missing)
        if (unreadable := np.isnan(numbers) & ~missing).any():
            raise _bad_element(array, int(np.argmax(unreadable)), dtype)
        numbers = numbers.reshape(array.shape)
    unfit = _unfit(numbers, np.dtype(dtype))
    if unfit.any():
        raise _bad_element(numbers, int(np.argmax(unfit)), dtype)
    return numbers.astype(np.dtype(dtype))


# -- per-row problems, for batch scoring ---------------------------------------------------


def row_problems(columns: list[ColumnSpec], frame: pd.DataFrame) -> pd.Series:
    """Why each row of `frame` fails `conform_table`, or None where it passes.

    The checks and messages are those of `conform_table`, applied to every row instead of
    stopping at the first problem: a missing value in a column that accepts none, a value
    that does not fit the column's dtype, an unknown category. Every reason that applies to a
    row is given, joined by "; ". Problems that are not about a row (duplicate, missing or
    unexpected columns) raise `InvalidInput` as `conform_table` does. Dates are parsed
    together, so in a column whose dates are written several ways the rows written unlike
    the first one are the ones reported.
    """
    import pandas as pd

    given = [str(c) for c in frame.columns]
    check_columns(columns, given)
    reasons: list[str | None] = [None] * len(frame)
    for spec in columns:
        for row, reason in _column_problems(frame.iloc[:, given.index(spec.name)], spec).items():
            known = reasons[row]
            reasons[row] = reason if known is None else f"{known}; {reason}"
    return pd.Series(reasons, index=frame.index, dtype=object)


def _column_problems(series: pd.Series, spec: ColumnSpec) -> dict[int, str]:
    """The rows of one column that `_cast_column` would refuse, with the reason."""
    import numpy as np

    series = _plain(series)
    missing = series.isna().to_numpy(dtype=bool)
    problems: dict[int, str] = {}
    if not spec.nullable:
        reason = f"column {spec.name!r} has a missing value and the model does not accept them"
        problems.update(dict.fromkeys(np.flatnonzero(missing).tolist(), reason))
    bad, cast = _unfit_rows(series, spec, missing)
    for row in np.flatnonzero(bad).tolist():
        value = _scalar(series.iloc[row])
        problems[row] = f"column {spec.name!r} expects {spec.dtype} but holds {value!r}"
    if spec.categories is not None and cast is not None:
        allowed = quoted(spec.categories, limit=20)
        for row in np.flatnonzero(_unknown(cast, spec, missing | bad)).tolist():
            value = _scalar(cast.iloc[row])
            problems[row] = (
                f"column {spec.name!r} has unknown category {value!r}; allowed: {allowed}"
            )
    return problems


def _unfit_rows(
    series: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.bool_], pd.Series | None]:
    """Where a present value does not fit the spec's dtype, and the column cast where it does
    (None when the dtype has no categories to check)."""
    import numpy as np
    import pandas as pd

    if spec.dtype in ("string", "category"):
        return _not_text(series, spec, missing), _text_values(series, spec, missing)
    if spec.dtype in _NUMERIC:
        values, bad = _number_values(series, spec, missing)
        fitted = np.where(bad, 0, values).astype(_number_target(spec, missing))
        return bad, pd.Series(fitted, index=series.index)
    if spec.dtype.startswith("datetime64"):
        parsed = pd.to_datetime(series, errors="coerce")
        bad = parsed.isna().to_numpy(dtype=bool) & ~missing
        try:
            parsed.astype(pd.api.types.pandas_dtype(spec.dtype))
        except (TypeError, ValueError):  # e.g. dates without a time zone for one with
            bad = ~missing
        return bad, None
    target = pd.api.types.pandas_dtype(spec.dtype)
    bad = np.zeros(len(series), dtype=bool)
    for row in np.flatnonzero(~missing).tolist():
        try:
            series.iloc[row : row + 1].astype(target)
        except (TypeError, ValueError):
            bad[row] = True
    return bad, None


def tensor_row_problems(spec: TensorSpec, data: Any) -> list[str | None]:
    """Why each row of `data` fails `conform_tensor`, or None where it passes.

    A row fails on its first element that is not of the spec's dtype, or on a NaN when the
    spec accepts none. A wrong shape is not about a row: it raises `InvalidInput`.
    """
    import numpy as np
    import pandas as pd

    array = _shaped(spec, as_array(data))
    rows = len(array)
    reasons: list[str | None] = [None] * rows

    def note(bad: npt.NDArray[np.bool_], values: npt.NDArray[Any], reason: str) -> None:
        by_row, values = bad.reshape(rows, -1), values.reshape(rows, -1)
        for row in np.flatnonzero(by_row.any(axis=1)).tolist():
            if reasons[row] is None:
                value = _scalar(values[row, int(np.argmax(by_row[row]))])
                reasons[row] = reason.format(value=value)

    if spec.dtype == "string":
        values = array.astype(object)
        text = np.fromiter((isinstance(v, str) for v in values.flat), bool, count=values.size)
        note(~text, values, "input holds {value!r}; the model expects text")
        return reasons
    expects = "input holds {value!r}; the model expects " + spec.dtype
    numbers = array
    if array.dtype.kind not in "biuf":  # read the way `_cast_array` reads text and objects
        flat = pd.Series(array.ravel(), dtype=object)
        missing = flat.isna().to_numpy(dtype=bool)
        numbers = _numbers(flat, missing).reshape(array.shape)
        note(np.isnan(numbers).ravel() & ~missing, array, expects)
    note(_unfit(numbers, np.dtype(spec.dtype)), numbers, expects)
    if np.dtype(spec.dtype).kind == "f" and numbers.dtype.kind == "f" and not spec.nullable:
        note(np.isnan(numbers), numbers, "input has NaN and the model does not accept them")
    return reasons


# -- reading input -------------------------------------------------------------------------


def as_frame(data: Any) -> pd.DataFrame | None:
    """Data given as a frame, a series, a dict of columns (of scalars: one row) or records."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, list | tuple) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame(list(data))
    if not isinstance(data, Mapping):
        return None
    try:
        if not any(pd.api.types.is_list_like(v) for v in data.values()):
            return pd.DataFrame([dict(data)])
        return pd.DataFrame(dict(data))
    except ValueError as exc:
        raise InvalidInput(f"the columns do not line up into rows: {exc}") from None


def as_array(data: Any) -> npt.NDArray[Any]:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame | pd.Series):
        return data.to_numpy()
    if not isinstance(data, np.ndarray | list | tuple):
        raise InvalidInput(f"expected an array or a list of rows, got {type(data).__name__}")
    try:
        array = np.asarray(data)
    except ValueError as exc:
        raise InvalidInput(
            f"the rows have different lengths; pass a rectangular array ({exc})"
        ) from None
    if array.dtype.kind in "US" and not isinstance(data, np.ndarray):
        array = np.asarray(data, dtype=object)  # numpy would turn [1, "a"] into text silently
    return array


# -- small helpers -------------------------------------------------------------------------


@functools.cache
def _text_dtype() -> Any:
    """The dtype pandas gives text by default (`str` from pandas 3, `object` before)."""
    import pandas as pd

    return pd.Series(["text"]).dtype


def _scalar(value: Any) -> Any:
    import numpy as np

    return value.item() if isinstance(value, np.generic) else value


def _bad_value(spec: ColumnSpec, series: pd.Series, row: int) -> InvalidInput:
    value = _scalar(series.iloc[row])
    return InvalidInput(f"column {spec.name!r} expects {spec.dtype} but row {row} holds {value!r}")


def _bad_element(array: npt.NDArray[Any], flat: int, expected: str) -> InvalidInput:
    import numpy as np

    row = int(np.unravel_index(flat, array.shape)[0])
    value = _scalar(array.flat[flat])
    return InvalidInput(f"input holds {value!r} at row {row}; the model expects {expected}")


def _rows(mask: npt.NDArray[Any]) -> str:
    import numpy as np

    rows = [str(r) for r in np.flatnonzero(mask)]
    listed = ", ".join(rows[:LISTED]) + (", …" if len(rows) > LISTED else "")
    return f"row {listed}" if len(rows) == 1 else f"rows {listed}"


def quoted(values: Sequence[Any], limit: int | None = None) -> str:
    limit = len(values) if limit is None else limit
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def duplicated(names: Sequence[str]) -> list[str]:
    return [name for name, count in collections.Counter(names).items() if count > 1]
