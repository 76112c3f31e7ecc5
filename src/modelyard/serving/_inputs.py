"""Request payloads read against a model's signature, fast where the columns are numbers.

Every protocol decodes its body into one of a few shapes (rows, records, columns), and a
`Reader` built once per model version turns that into validated model input. For a table
whose columns are all plain numbers, rows of JSON numbers go straight into one float64
array (no pandas); anything else, and anything the fast path has doubts about, goes through
`Signature.validate_input`, which gives the precise error. Both paths accept and refuse
the same inputs and produce the same values (a property test checks it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

    from modelyard.models import ColumnSpec, Signature

_NUMERIC = frozenset(
    {"float16", "float32", "float64"} | {f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)}
)
_EXACT_INT = 2**53  # float64 holds every integer up to here


@dataclass(frozen=True, slots=True)
class Batch:
    """The validated input of one request: `data` as the model takes it, `rows` of it.

    `data` is a float64 array with the signature's columns in order (the fast path), a
    DataFrame (a table that went through `validate_input`), or an ndarray (a tensor).
    """

    data: Any
    rows: int


class Reader:
    """Reads decoded payloads into `Batch`es for one signature (or none: taken as given)."""

    def __init__(self, signature: Signature | None) -> None:
        self.signature = signature
        columns = signature.columns if signature is not None else None
        self.columns: list[ColumnSpec] | None = columns
        self.names: list[str] = [c.name for c in columns or []]
        self._name_set = frozenset(self.names)
        self._index: pd.Index | None = None
        self.fast = bool(columns) and all(
            c.dtype in _NUMERIC and c.categories is None for c in columns or []
        )
        if self.fast:
            kinds = [np.dtype(c.dtype).kind for c in columns or []]
            self._nullable = np.array([c.nullable for c in columns or []])
            self._ints = np.array([k in "iu" for k in kinds])
            self._dtypes = {c.name: c.dtype for c in columns or [] if c.dtype != "float64"}
            self._int_names = frozenset(
                c.name for c, k in zip(columns or [], kinds, strict=True) if k in "iu"
            )

    @property
    def is_table(self) -> bool:
        return self.columns is not None

    # -- payload shapes ---------------------------------------------------------------

    def rows(self, rows: Sequence[Any] | npt.NDArray[Any]) -> Batch:
        """Rows as lists of values in the signature's column order (or tensor rows)."""
        if self.fast and (array := self._fast(rows)) is not None:
            return Batch(array, len(array))
        return self._general(rows)

    def records(self, records: Sequence[Mapping[str, Any]]) -> Batch:
        """Rows as objects keyed by column name."""
        if self.fast and all(type(r) is dict and r.keys() == self._name_set for r in records):
            names = self.names
            return self.rows([[r[n] for n in names] for r in records])
        return self._general(list(records))

    def split(self, columns: Sequence[Any], rows: Sequence[Any]) -> Batch:
        """Rows as lists under a header of column names (pandas' `split` orientation)."""
        if list(columns) == self.names:
            return self.rows(rows)
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput("'columns' must be a list of column names")
        if not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
            raise InvalidInput(f"every row of 'data' must be a list of {len(columns)} values")
        if not self.is_table:
            return self.rows(rows)
        if self.fast and len(set(columns)) == len(columns) and set(columns) == self._name_set:
            order = [columns.index(n) for n in self.names]
            return self.rows([[r[i] for i in order] for r in rows])
        return self._general({c: [r[i] for r in rows] for i, c in enumerate(columns)})

    def columnar(self, columns: Mapping[str, Sequence[Any]]) -> Batch:
        """One list of values per column name."""
        lengths = {len(v) for v in columns.values() if isinstance(v, list)}
        if not all(isinstance(v, list) for v in columns.values()) or len(lengths) > 1:
            raise InvalidInput("every column must be a list of values, all of the same length")
        if self.fast and columns.keys() == self._name_set:
            return self.rows(
                [list(row) for row in zip(*(columns[n] for n in self.names), strict=True)]
            )
        return self._general(dict(columns))

    # -- the two paths ----------------------------------------------------------------

    def _general(self, data: Any) -> Batch:
        if self.signature is None:  # a model logged without one gets a frame or an array
            from modelyard.models._conform import as_array, as_frame

            frame = as_frame(data)
            conformed = frame if frame is not None else as_array(data)
        else:
            conformed = self.signature.validate_input(data)
        return Batch(conformed, len(conformed))

    def _fast(self, rows: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.float64] | None:
        """Rows of plain JSON numbers as one array; None when the general path must judge."""
        width = len(self.names)
        for row in rows:
            if type(row) is not list or len(row) != width:
                return None
            for value in row:
                kind = type(value)
                if kind is not float and kind is not int and value is not None:
                    return None  # text, bools, objects: the general path reads or refuses them
        array = np.array(rows, dtype=np.float64).reshape(len(rows), width)
        missing = np.isnan(array)
        if (missing & ~self._nullable).any():
            return None
        if self._ints.any():
            ints = array[:, self._ints]
            known = ints[~np.isnan(ints)]
            if (np.floor(known) != known).any() or (np.abs(known) > _EXACT_INT).any():
                return None
        return array

    # -- model input for a whole batch -----------------------------------------------

    def model_input(self, batches: Sequence[Batch], *, array: bool = False) -> Any:
        """The model's input for several requests run together (`array`: the model takes a
        table as one array, so rows read on the fast path stay one)."""
        if all(self._is_fast(b) for b in batches):  # the arrays stacked, as one frame
            arrays = [b.data for b in batches]
            stacked = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
            return stacked if array else self._frame(stacked)
        datas = [self._frame(b.data) if self._is_fast(b) else b.data for b in batches]
        if len(datas) == 1:
            return datas[0]
        if all(isinstance(d, np.ndarray) for d in datas):
            return np.concatenate(datas)
        import pandas as pd

        return pd.concat(datas, ignore_index=True)

    def _is_fast(self, batch: Batch) -> bool:
        return self.is_table and isinstance(batch.data, np.ndarray)

    def _frame(self, array: npt.NDArray[np.float64]) -> pd.DataFrame:
        import pandas as pd

        if self._index is None:  # built once: pandas converts a list of names on every call
            self._index = pd.Index(self.names)
        frame = pd.DataFrame(array, columns=self._index, copy=False)
        if self._dtypes:
            # int columns holding a missing value stay float64, as `validate_input` leaves them
            frame = frame.astype(
                {
                    n: t
                    for n, t in self._dtypes.items()
                    if n not in self._int_names or not frame[n].isna().any()
                }
            )
        return frame
