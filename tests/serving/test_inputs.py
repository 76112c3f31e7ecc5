"""Request payloads read against a signature: the fast path agrees with `validate_input`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidInput
from modelyard.models import ColumnSpec, Signature
from modelyard.serving._inputs import Reader

NUMERIC = Signature(
    columns=[
        ColumnSpec(name="a", dtype="float64"),
        ColumnSpec(name="b", dtype="int64"),
        ColumnSpec(name="c", dtype="float32", nullable=True),
    ]
)
MIXED = Signature(
    columns=[
        ColumnSpec(name="x", dtype="float64"),
        ColumnSpec(name="city", dtype="string", categories=["oslo", "rome"]),
    ]
)

values = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(min_value=-1e30, max_value=1e30),
    st.none(),
    st.booleans(),
    st.sampled_from(["3", "x", "", "1e3"]),
)


def general(signature: Signature, rows: list[list[object]]) -> pd.DataFrame | None:
    try:
        frame = signature.validate_input(rows)
    except InvalidInput:
        return None
    assert isinstance(frame, pd.DataFrame)
    return frame


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(values, min_size=3, max_size=3), min_size=1, max_size=5))
def test_fast_path_accepts_and_refuses_what_validate_input_does(rows: list[list[object]]) -> None:
    reader = Reader(NUMERIC)
    expected = general(NUMERIC, rows)
    try:
        batch = reader.rows(rows)
    except InvalidInput:
        assert expected is None
        return
    assert expected is not None
    got = reader.model_input([batch])
    assert list(got.columns) == ["a", "b", "c"]
    assert list(got.dtypes) == list(expected.dtypes)
    np.testing.assert_allclose(
        got.to_numpy(dtype=np.float64), expected.to_numpy(dtype=np.float64), rtol=1e-6
    )


def test_plain_numbers_take_the_fast_path_and_come_back_in_the_signature_dtypes() -> None:
    reader = Reader(NUMERIC)
    batch = reader.rows([[1.5, 2, None], [2.5, 3, 4.0]])
    assert isinstance(batch.data, np.ndarray)
    frame = reader.model_input([batch])
    assert frame.dtypes.astype(str).tolist() == ["float64", "int64", "float32"]
    assert math.isnan(frame["c"].iloc[0])


def test_batches_of_several_requests_concatenate_in_order() -> None:
    reader = Reader(NUMERIC)
    first = reader.rows([[1.0, 1, 1.0]])
    second = reader.records([{"a": 2.0, "b": 2, "c": 2.0}, {"c": 3.0, "b": 3, "a": 3.0}])
    third = reader.rows([["4", "4", "4"]])  # text: the general path
    assert not isinstance(third.data, np.ndarray)
    frame = reader.model_input([first, second, third])
    assert frame["a"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert frame["b"].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[1.0, 2]], "row 0 has 2 values but the model expects 3"),
        ([[None, 1, 1.0]], "column 'a' has missing values"),
        ([[1.0, 2.5, 1.0]], "column 'b' expects int64 but row 0 holds 2.5"),
        ([[1.0, "two", 1.0]], "column 'b' expects int64 but row 0 holds 'two'"),
        ([[1.0, 2, {"x": 1}]], "column 'c'"),
    ],
)
def test_bad_rows_name_the_problem(rows: list[list[object]], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Reader(NUMERIC).rows(rows)


def test_records_with_missing_or_extra_keys_name_the_columns() -> None:
    reader = Reader(NUMERIC)
    with pytest.raises(InvalidInput, match=r"missing column\(s\) 'c'.*unexpected column\(s\) 'd'"):
        reader.records([{"a": 1.0, "b": 1, "d": 3}])


def test_split_reorders_columns_by_name() -> None:
    reader = Reader(NUMERIC)
    batch = reader.split(["c", "a", "b"], [[3.0, 1.0, 2]])
    frame = reader.model_input([batch])
    assert frame.iloc[0].tolist() == [1.0, 2.0, 3.0]


def test_text_columns_and_categories_go_through_the_signature() -> None:
    reader = Reader(MIXED)
    assert not reader.fast
    frame = reader.model_input([reader.rows([[1.0, "oslo"]])])
    assert frame["city"].tolist() == ["oslo"]
    with pytest.raises(InvalidInput, match="column 'city' has unknown categories 'paris'"):
        reader.rows([[1.0, "paris"]])


def test_columnar_input_needs_lists_of_one_length() -> None:
    reader = Reader(NUMERIC)
    with pytest.raises(InvalidInput, match="same length"):
        reader.columnar({"a": [1.0], "b": [1, 2], "c": [1.0]})
    batch = reader.columnar({"a": [1.0, 2.0], "b": [1, 2], "c": [None, 2.0]})
    assert batch.rows == 2
