"""Model signatures: what a model takes and returns, inferred when it is logged.

The signature is stored in the manifest, and every prediction input is checked against it,
so a wrong payload fails with a message that names the column instead of deep in the model.
That check and the casting it does live in `_conform`; `Signature.validate_input` delegates.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelyard.errors import InvalidInput
from modelyard.models._conform import (
    LISTED,
    as_array,
    as_frame,
    conform_table,
    conform_tensor,
    duplicated,
    quoted,
)

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

_Category = str | int | float | bool

_MIN_ROWS_FOR_CATEGORIES = 100

_PII_WORDS = frozenset(
    {
        "email", "phone", "phonenumber", "telephone", "mobile", "ssn", "passport", "iban",
        "address", "street", "zip", "zipcode", "postcode", "dob", "birthdate", "birthday",
        "dateofbirth", "ip", "ipaddress", "creditcard", "cardnumber", "surname", "firstname",
        "lastname", "fullname", "givenname", "familyname", "middlename", "username",
        "customername", "clientname", "contactname", "patientname",
    }
)  # fmt: skip
_SEPARATORS = re.compile(r"[_\-\s.]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[a-zA-Z])(?=[0-9])")


class ColumnSpec(BaseModel):
    """One input column: dtype, whether values may be missing, allowed values, personal data."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: str
    nullable: bool = False
    categories: list[_Category] | None = None
    pii: bool = False


class TensorSpec(BaseModel):
    """An array input; -1 marks a free dimension, and the first (batch) one is always free."""

    model_config = ConfigDict(frozen=True)

    dtype: str
    shape: list[int]
    nullable: bool = False

    @field_validator("shape")
    @classmethod
    def _batch_first(cls, shape: list[int]) -> list[int]:
        if not shape or shape[0] != -1 or any(d < -1 for d in shape):
            raise ValueError(f"a tensor shape starts with the batch dimension -1, got {shape}")
        return shape


class OutputSpec(BaseModel):
    """What one prediction method (`predict`, `predict_proba`, …) returns."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: str
    shape: list[int]


class Signature(BaseModel):
    """The input a model accepts (a table or a tensor) and the outputs it produces."""

    model_config = ConfigDict(frozen=True)

    columns: list[ColumnSpec] | None = None
    tensor: TensorSpec | None = None
    outputs: list[OutputSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_input(self) -> Signature:
        if (self.columns is None) == (self.tensor is None):
            raise ValueError("a signature describes either columns or a tensor, exactly one")
        if self.columns is not None:
            if not self.columns:
                raise ValueError("a table signature needs at least one column")
            if duplicates := duplicated([c.name for c in self.columns]):
                raise ValueError(f"duplicate column name(s) {quoted(duplicates)}")
        return self

    @property
    def kind(self) -> Literal["table", "tensor"]:
        return "table" if self.columns is not None else "tensor"

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns or [] if c.pii]

    def validate_input(self, data: Any) -> pd.DataFrame | npt.NDArray[Any]:
        """Check `data` against the signature; return a new frame or array in the model's dtypes.

        Tables come back with exactly the signature's columns, in its order and dtypes, except
        that int and bool columns holding missing values come back as float64 with NaN (which
        scikit-learn accepts) and text comes back in pandas' default text dtype, NaN for missing.
        Numbers written as text ("3") are read as numbers. Raises `InvalidInput` naming the column.
        """
        if self.columns is not None:
            return conform_table(self.columns, data)
        assert self.tensor is not None  # the model validator guarantees one of the two
        return conform_tensor(self.tensor, data)

    def with_outputs(self, outputs: Sequence[OutputSpec]) -> Signature:
        return self.model_copy(update={"outputs": list(outputs)})

    def diff(self, other: Signature) -> list[str]:
        """What changed from this signature to `other`, one readable line per change."""
        if self.columns is not None and other.columns is not None:
            changes = _diff_columns(self.columns, other.columns)
        elif self.tensor is not None and other.tensor is not None:
            changes = _diff_fields("tensor", self.tensor, other.tensor)
        else:
            changes = [f"input changed from a {self.kind} to a {other.kind}"]
        return changes + _diff_outputs(self.outputs, other.outputs)


def infer_signature(
    data: Any,
    *,
    pii: Sequence[str] | None = None,
    nullable: Sequence[str] | None = None,
    categories: Mapping[str, Sequence[Any]] | None = None,
    max_categories: int = 50,
) -> Signature:
    """Describe example input (a DataFrame, an array, rows, records or a dict of columns).

    A column is nullable when the example has missing values in it or it is in `nullable`.
    Text columns get an allowed set of values only when the example has at least 100 rows and
    at most `max_categories` distinct values; `categories` sets allowed values explicitly.
    `pii` names the personal-data columns exactly (`[]`: none). When it is None they are
    guessed from the names: a name is split into lowercase tokens on `_`, `-`, spaces, dots,
    camelCase and letter-digit boundaries, and flagged when a token, or two or three adjacent
    tokens joined, is one of: email (so e-mail too), phone, phonenumber, telephone, mobile, ssn,
    passport, iban, address, street, zip, zipcode, postcode, dob, birthdate, birthday,
    dateofbirth, ip, ipaddress, creditcard, cardnumber, surname, or first/last/full/given/
    family/middle/user/customer/client/contact/patient + name; or when the whole name is
    "name". So "customer_email", "phoneNumber", "first_name", "user_name" and "zip_ratio" are
    flagged; "filename", "product_name", "domain" and "tip" are not.
    """
    frame = as_frame(data)
    if frame is None:
        return Signature(tensor=_infer_tensor(data))
    names = [str(c) for c in frame.columns]
    if len(frame) == 0 or not names:
        raise InvalidInput("the example data has no rows or no columns; pass at least one row")
    if duplicates := duplicated(names):
        raise InvalidInput(f"the example data has duplicate column(s) {quoted(duplicates)}")
    for option, given in (("pii", pii), ("nullable", nullable), ("categories", categories)):
        if unknown := [n for n in given or () if n not in names]:
            raise InvalidInput(
                f"{option} names unknown column(s) {quoted(unknown)}; the data has: "
                + ", ".join(names)
            )
    flagged = {n for n in names if _is_pii_name(n)} if pii is None else set(pii)
    specs = []
    for position, name in enumerate(names):
        series = frame.iloc[:, position]
        dtype, allowed = _infer_column(name, series, max_categories)
        if categories is not None and name in categories:
            allowed = _category_values(name, categories[name])
        missing = bool(series.isna().any()) or name in (nullable or ())
        is_pii = name in flagged
        specs.append(
            ColumnSpec(name=name, dtype=dtype, nullable=missing, categories=allowed, pii=is_pii)
        )
    return Signature(columns=specs)


def infer_output(name: str, result: Any) -> OutputSpec:
    """Describe what prediction method `name` returned for a batch of rows."""
    array = as_array(result)
    if array.ndim == 0:
        raise InvalidInput(f"{name} returned a single value; expected one result per row")
    dtype = "string" if _is_text(array) else str(array.dtype)
    return OutputSpec(name=name, dtype=dtype, shape=[-1, *array.shape[1:]])


def _is_pii_name(name: str) -> bool:
    """Whether a column name suggests personal data (the rule is in `infer_signature`)."""
    tokens = [t.lower() for part in _SEPARATORS.split(name) for t in _CAMEL.split(part) if t]
    if tokens == ["name"]:
        return True
    joined = set(tokens)
    joined |= {a + b for a, b in itertools.pairwise(tokens)}
    joined |= {a + b + c for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)}
    return not joined.isdisjoint(_PII_WORDS)


# -- inference -----------------------------------------------------------------------------


def _infer_tensor(data: Any) -> TensorSpec:
    import numpy as np

    array = as_array(data)
    if array.ndim == 0 or array.shape[0] == 0:
        raise InvalidInput("the example data has no rows; pass at least one row")
    if array.dtype.kind in "biufc":
        dtype = array.dtype.name
    elif _is_text(array):
        dtype = "string"
    else:
        types = list(dict.fromkeys(type(v).__name__ for v in array.flat))[:LISTED]
        raise InvalidInput(
            f"the array holds {' and '.join(types)} values; pass numbers, booleans or text only"
        )
    nullable = array.dtype.kind == "f" and bool(np.isnan(array).any())
    return TensorSpec(dtype=dtype, shape=[-1, *array.shape[1:]], nullable=nullable)


def _infer_column(name: str, series: pd.Series, max_categories: int) -> tuple[str, Any]:
    """The canonical dtype of an example column, and its allowed values if it has a set."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        return "category", _category_values(name, series.dtype.categories.tolist())
    dtype = _canonical_dtype(name, series)
    if dtype == "string" and len(series) >= _MIN_ROWS_FOR_CATEGORIES:
        distinct = series.dropna().unique()
        if len(distinct) <= max_categories:
            return dtype, sorted(str(v) for v in distinct)
    return dtype, None


def _canonical_dtype(name: str, series: pd.Series) -> str:
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return f"datetime64[ns, {dtype.tz}]"
    if dtype == np.dtype(object):
        return _object_dtype(name, series)
    if dtype.kind == "M":
        return "datetime64[ns]"
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)  # pandas' nullable Int64, Float64, boolean
    if isinstance(numpy_dtype, np.dtype) and numpy_dtype.kind in "biuf":
        return numpy_dtype.name
    return str(dtype)


def _object_dtype(name: str, series: pd.Series) -> str:
    """The dtype of an object column from its values, which must all be of one kind."""
    import pandas as pd

    inferred = pd.api.types.infer_dtype(series, skipna=True)
    known = {"string": "string", "integer": "int64", "floating": "float64", "boolean": "bool"}
    known |= {"mixed-integer-float": "float64", "datetime": "datetime64[ns]"}
    known |= {"datetime64": "datetime64[ns]", "date": "datetime64[ns]"}
    if inferred in known:
        return known[inferred]
    if inferred == "empty":
        raise InvalidInput(f"column {name!r} holds only missing values; drop it or fill it")
    types = list(dict.fromkeys(type(v).__name__ for v in series.dropna()))
    if len(types) > 1:
        raise InvalidInput(f"column {name!r} mixes types {' and '.join(types)}; convert it")
    raise InvalidInput(f"column {name!r} holds {types[0]} values; convert them to text or numbers")


def _category_values(name: str, values: Sequence[Any]) -> list[_Category]:
    import numpy as np

    allowed: list[_Category] = []
    for value in values:
        item = value.item() if isinstance(value, np.generic) else value
        if not isinstance(item, str | int | float | bool):
            raise InvalidInput(
                f"column {name!r}: category {item!r} is a {type(item).__name__}; "
                "categories are text, numbers or booleans"
            )
        if item not in allowed:
            allowed.append(item)
    return allowed


def _is_text(array: npt.NDArray[Any]) -> bool:
    kind = array.dtype.kind
    return kind in "US" or (kind == "O" and all(isinstance(v, str) for v in array.flat))


# -- diff ----------------------------------------------------------------------------------


def _diff_columns(old: list[ColumnSpec], new: list[ColumnSpec]) -> list[str]:
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    changes = [f"column {n!r} removed ({c.dtype})" for n, c in before.items() if n not in after]
    changes += [f"column {n!r} added ({c.dtype})" for n, c in after.items() if n not in before]
    for name, spec in before.items():
        if name in after:
            changes += _diff_column(spec, after[name])
    kept_before = [n for n in before if n in after]
    kept_after = [n for n in after if n in before]
    if kept_before != kept_after:
        changes.append(f"column order: {', '.join(kept_before)} → {', '.join(kept_after)}")
    return changes


def _diff_column(old: ColumnSpec, new: ColumnSpec) -> list[str]:
    where = f"column {old.name!r}"
    changes = []
    if old.dtype != new.dtype:
        changes.append(f"{where}: {old.dtype} → {new.dtype}")
    if old.nullable != new.nullable:
        now = "now accepts" if new.nullable else "no longer accepts"
        changes.append(f"{where}: {now} missing values")
    if old.categories != new.categories:
        if old.categories is None or new.categories is None:
            allowed = "any value" if new.categories is None else quoted(new.categories)
            changes.append(f"{where}: allowed values now {allowed}")
        else:
            added = [v for v in new.categories if v not in old.categories]
            removed = [v for v in old.categories if v not in new.categories]
            parts = [f"categories added {quoted(added)}"] if added else []
            parts += [f"categories removed {quoted(removed)}"] if removed else []
            changes.append(f"{where}: {'; '.join(parts) or 'categories reordered'}")
    if old.pii != new.pii:
        changes.append(f"{where}: {'now' if new.pii else 'no longer'} marked as PII")
    return changes


def _diff_outputs(old: list[OutputSpec], new: list[OutputSpec]) -> list[str]:
    before = {o.name: o for o in old}
    after = {o.name: o for o in new}
    changes = [f"output {n!r} removed" for n in before if n not in after]
    for name, out in after.items():
        if name not in before:
            changes.append(f"output {name!r} added ({out.dtype}, shape {tuple(out.shape)})")
        else:
            changes += _diff_fields(f"output {name!r}", before[name], out)
    return changes


def _diff_fields(label: str, old: BaseModel, new: BaseModel) -> list[str]:
    def show(value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    return [
        f"{label} {field}: {show(getattr(old, field))} → {show(getattr(new, field))}"
        for field in type(old).model_fields
        if getattr(old, field) != getattr(new, field)
    ]
