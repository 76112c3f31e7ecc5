"""Conforming prediction input to a signature: checked, then cast to the model's dtypes.

`Signature.validate_input` delegates here, passing its specs, so this module needs `_signature`
only for type hints. Inference in `_signature` shares the input readers (`as_frame`, `as_array`)
and the message helpers (`quoted`, `duplicated`, `LISTED`) defined here.
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
    if duplicates := duplicated(given):
        raise InvalidInput(f"the input has duplicate column(s) {quoted(duplicates)}")
    problems = []
    if missing := [n for n in expected if n not in given]:
        problems.append(f"missing column(s) {quoted(missing)}")
    if extra := [n for n in given if n not in expected]:
        problems.append(f"unexpected column(s) {quoted(extra)}")
    if problems:
        raise InvalidInput(f"{'; '.join(problems)}; the model expects: {', '.join(expected)}")
    position = {name: i for i, name in enumerate(given)}
    cast = {c.name: _cast_column(frame.iloc[:, position[c.name]], c) for c in columns}
    # When nothing changed, a copy keeps the caller's memory layout, so the model computes
    # bit-identical predictions (BLAS sums a column-major frame in another order).
    unchanged = list(frame.columns) == expected and all(
        cast[name].dtype == frame.dtypes.iloc[i] for i, name in enumerate(expected)
    )
    return frame.copy() if unchanged else pd.DataFrame(cast, index=frame.index)


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

    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
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


def _cast_number(series: pd.Series, spec: ColumnSpec, missing: npt.NDArray[Any]) -> pd.Series:
    import numpy as np
    import pandas as pd

    target = np.dtype(spec.dtype)
    values = _numbers(series, missing)
    bad = _unfit(values, target)
    if values.dtype.kind == "f":
        bad |= np.isnan(values)  # text that is not a number
    bad &= ~missing
    if bad.any():
        raise _bad_value(spec, series, int(np.argmax(bad)))
    if target.kind in "biu" and missing.any():
        target = np.dtype(np.float64)
    return pd.Series(values.astype(target), index=series.index)


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
    import pandas as pd

    values = series.to_numpy(dtype=object)
    if spec.dtype == "string" and not isinstance(series.dtype, pd.StringDtype):
        text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
        if (bad := ~text & ~missing).any():
            raise _bad_value(spec, series, int(np.argmax(bad)))
    values = np.where(missing, np.nan, values)
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
    unknown = ~missing & ~cast.isin(allowed).to_numpy(dtype=bool)
    if unknown.any():
        values = {_scalar(v) for v in cast[unknown]}
        listed = sorted(values, key=lambda v: (type(v).__name__, v))
        raise InvalidInput(
            f"column {spec.name!r} has unknown categories {quoted(listed, LISTED)}; "
            f"allowed: {quoted(allowed, limit=20)}"
        )


# -- validation: tensors -------------------------------------------------------------------


def conform_tensor(spec: TensorSpec, data: Any) -> npt.NDArray[Any]:
    import numpy as np

    array = as_array(data)
    shape = spec.shape
    if array.ndim == 1 and len(shape) > 1 and array.shape[0] == 0:
        array = array.reshape(0, *(max(d, 0) for d in shape[1:]))
    elif array.ndim == len(shape) - 1 and list(array.shape) == shape[1:]:
        array = array[np.newaxis]  # one row without its batch dimension
    if array.ndim != len(shape) or any(
        d not in (-1, n) for d, n in zip(shape, array.shape, strict=True)
    ):
        raise InvalidInput(f"expected shape {tuple(shape)}, got {tuple(array.shape)}")
    cast = _cast_array(array, spec.dtype)
    if cast.dtype.kind == "f" and not spec.nullable:
        nan_rows = np.isnan(cast).any(axis=tuple(range(1, cast.ndim)))
        if nan_rows.any():
            raise InvalidInput(
                f"input has NaN at {_rows(nan_rows)} and the model does not accept them"
            )
    return cast


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
