"""Model signatures: inferred from example data, stored as JSON, enforced on prediction input."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelyard.errors import InvalidInput
from modelyard.models._signature import (
    ColumnSpec,
    OutputSpec,
    Signature,
    TensorSpec,
    infer_output,
    infer_signature,
)

KINDS = ("int", "float", "float_nan", "bool", "text", "text_missing", "category", "nullable_int")


def column_of(kind: str, rows: int) -> st.SearchStrategy[pd.Series]:
    def values(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
        return st.lists(elements, min_size=rows, max_size=rows)

    if kind == "int":
        return values(st.integers(-(2**63), 2**63 - 1)).map(lambda v: pd.Series(v, dtype="int64"))
    if kind in ("float", "float_nan"):
        floats = st.floats(allow_nan=kind == "float_nan")
        return values(floats).map(lambda v: pd.Series(v, dtype="float64"))
    if kind == "bool":
        return values(st.booleans()).map(lambda v: pd.Series(v, dtype=bool))
    if kind == "text":
        return values(st.text(max_size=8)).map(pd.Series)
    if kind == "text_missing":
        some_text = values(st.none() | st.text(max_size=8)).filter(
            lambda v: any(x is not None for x in v)
        )
        return some_text.map(pd.Series)
    if kind == "category":
        return values(st.sampled_from("abc")).map(
            lambda v: pd.Series(pd.Categorical(v, categories=["a", "b", "c"]))
        )
    ints = st.none() | st.integers(-(2**53), 2**53)
    return values(ints).map(lambda v: pd.Series(v, dtype="Int64"))


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(1, 25))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=6))
    return pd.DataFrame(
        {f"{kind}_{i}": draw(column_of(kind, rows)) for i, kind in enumerate(kinds)}
    )


def as_model_sees_it(frame: pd.DataFrame) -> pd.DataFrame:
    """The documented casts: pandas nullable ints become float64 with NaN, or int64 when full."""
    out = frame.copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.Int64Dtype):
            full = not frame[name].isna().any()
            out[name] = frame[name].astype("int64" if full else "float64")
    return out


def table(**columns: ColumnSpec) -> Signature:
    return Signature(columns=list(columns.values()))


def col(name: str, dtype: str, **options: Any) -> ColumnSpec:
    return ColumnSpec(name=name, dtype=dtype, **options)


def error_of(signature: Signature, data: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        signature.validate_input(data)
    return caught.value.message


PEOPLE = Signature(
    columns=[
        col("age", "int64"),
        col("income", "float64", nullable=True),
        col("plan", "string", categories=["basic", "pro"]),
        col("active", "bool"),
    ]
)
ROW = {"age": 30, "income": 1.5, "plan": "pro", "active": True}


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(frames())
def test_a_frame_validates_against_its_own_signature_unchanged(frame: pd.DataFrame) -> None:
    out = infer_signature(frame).validate_input(frame)
    pd.testing.assert_frame_equal(out, as_model_sees_it(frame))


@settings(max_examples=50, deadline=None)
@given(frames())
def test_signature_survives_a_json_round_trip_exactly(frame: pd.DataFrame) -> None:
    signature = infer_signature(frame)
    stored = json.dumps(signature.model_dump(mode="json"))
    assert Signature.model_validate(json.loads(stored)) == signature


@settings(max_examples=50, deadline=None)
@given(frames(), st.randoms())
def test_shuffled_columns_come_back_in_signature_order(frame: pd.DataFrame, rnd: Any) -> None:
    names = list(frame.columns)
    rnd.shuffle(names)
    out = infer_signature(frame).validate_input(frame[names])
    pd.testing.assert_frame_equal(out, as_model_sees_it(frame))


# -- inference -----------------------------------------------------------------------------


def test_infers_canonical_dtypes_and_nullability_from_a_frame() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.Series([1, None, 3], dtype="Int64"),
            "small": np.array([1, 2, 3], dtype=np.int8),
            "x": [1.0, 2.0, 3.0],
            "city": ["a", None, "c"],
            "flag": [True, False, True],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "tier": pd.Categorical(["lo", "hi", "lo"]),
            3: [1, 2, 3],
        }
    )
    specs = {c.name: c for c in infer_signature(frame).columns or []}
    assert specs["n"] == col("n", "int64", nullable=True)
    assert specs["small"].dtype == "int8"
    assert specs["city"] == col("city", "string", nullable=True)
    assert specs["flag"].dtype == "bool"
    assert specs["when"].dtype == "datetime64[ns]"
    assert specs["tier"] == col("tier", "category", categories=["hi", "lo"])
    assert specs["3"].dtype == "int64"


def test_nullable_option_marks_columns_without_missing_values() -> None:
    signature = infer_signature(pd.DataFrame({"x": [1.0]}), nullable=["x"])
    assert signature.columns == [col("x", "float64", nullable=True)]


def test_infers_from_records_dicts_series_and_arrays() -> None:
    assert infer_signature([{"a": 1}, {"a": 2}]).kind == "table"
    assert infer_signature({"a": [1, 2]}).columns == [col("a", "int64")]
    assert infer_signature(pd.Series([1.0], name="s")).columns == [col("s", "float64")]
    tensor = infer_signature(np.zeros((4, 3, 2), dtype=np.float32)).tensor
    assert tensor == TensorSpec(dtype="float32", shape=[-1, 3, 2])
    assert infer_signature([[1.0, np.nan]]).tensor == TensorSpec(
        dtype="float64", shape=[-1, 2], nullable=True
    )
    assert infer_signature(["some text", "more"]).tensor == TensorSpec(dtype="string", shape=[-1])


@pytest.mark.parametrize("data", [None, "text", 3, object()])
def test_inferring_from_something_that_is_not_data_names_its_type(data: Any) -> None:
    with pytest.raises(InvalidInput, match=type(data).__name__):
        infer_signature(data)


@pytest.mark.parametrize("data", [pd.DataFrame({"a": []}), [], np.zeros((0, 3))])
def test_inferring_from_empty_data_is_refused(data: Any) -> None:
    with pytest.raises(InvalidInput, match="no rows"):
        infer_signature(data)


def test_duplicate_column_names_are_refused() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInput, match=r"duplicate column.*'a'"):
        infer_signature(frame)


def test_a_column_mixing_types_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="column 'x' mixes types str and int"):
        infer_signature(pd.DataFrame({"x": pd.Series(["a", 1], dtype=object)}))


def test_a_list_mixing_text_and_numbers_is_refused() -> None:
    with pytest.raises(InvalidInput, match="str and int"):
        infer_signature(["a", 1])


# -- categories ----------------------------------------------------------------------------


def test_a_small_example_never_fixes_the_allowed_values() -> None:
    signature = infer_signature(pd.DataFrame({"plan": ["basic", "pro"] * 2}))
    assert signature.columns == [col("plan", "string")]


def test_categories_are_inferred_from_at_least_100_rows() -> None:
    frame = pd.DataFrame({"plan": ["pro", "basic", None, "team"] * 25})
    [plan] = infer_signature(frame).columns or []
    assert plan.categories == ["basic", "pro", "team"]


def test_too_many_distinct_values_are_not_categories() -> None:
    frame = pd.DataFrame({"city": [f"c{i % 60}" for i in range(120)]})
    assert (infer_signature(frame).columns or [])[0].categories is None
    few = infer_signature(frame, max_categories=60).columns or []
    assert few[0].categories is not None and len(few[0].categories) == 60


def test_explicit_categories_override_inference() -> None:
    frame = pd.DataFrame({"plan": ["basic"], "level": [1]})
    signature = infer_signature(frame, categories={"plan": ["basic", "pro"], "level": [1, 2]})
    assert [c.categories for c in signature.columns or []] == [["basic", "pro"], [1, 2]]
    with pytest.raises(InvalidInput, match=r"unknown column.*'nope'"):
        infer_signature(frame, categories={"nope": ["x"]})


def test_unknown_categories_are_listed_sorted_with_the_allowed_ones() -> None:
    rows = [ROW | {"plan": p} for p in ["zeta", "pro", "alpha", "zeta"]]
    message = error_of(PEOPLE, rows)
    assert (
        "column 'plan' has unknown categories 'alpha', 'zeta'; allowed: 'basic', 'pro'" in message
    )


def test_category_columns_come_back_with_the_signature_categories() -> None:
    signature = table(tier=col("tier", "category", categories=["lo", "hi"]))
    out = signature.validate_input({"tier": ["hi", "lo"]})
    assert isinstance(out, pd.DataFrame)
    assert list(out["tier"].cat.categories) == ["lo", "hi"]
    assert "column 'tier' has unknown categories 'mid'" in error_of(signature, {"tier": ["mid"]})


def test_categories_with_numbers_and_booleans_survive_json() -> None:
    signature = table(x=col("x", "category", categories=["a", 1, 2.5, True]))
    again = Signature.model_validate(json.loads(json.dumps(signature.model_dump(mode="json"))))
    assert again == signature
    assert [type(v) for v in (again.columns or [])[0].categories or []] == [str, int, float, bool]


# -- PII -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "email", "customer_email", "E-Mail", "phoneNumber", "mobile", "SSN", "passport_no",
        "iban", "home_address", "street", "zip", "zip_code", "postcode", "dob", "birth_date",
        "date_of_birth", "client_ip", "IPAddress", "first_name", "lastName", "full-name",
        "username", "user_name", "name", "credit_card", "card_number", "zip_ratio",
    ],
)  # fmt: skip
def test_pii_heuristic_flags_personal_data_names(name: str) -> None:
    assert infer_signature(pd.DataFrame({name: [1]})).pii_columns == [name]


@pytest.mark.parametrize(
    "name",
    ["domain", "filename", "file_name", "product_name", "names", "tip", "zipper", "emails_sent",
     "description", "age", "income", "ship_date", "mail_opened"],
)  # fmt: skip
def test_pii_heuristic_leaves_other_names_alone(name: str) -> None:
    assert infer_signature(pd.DataFrame({name: [1]})).pii_columns == []


def test_pii_flags_are_guessed_unless_given_explicitly() -> None:
    frame = pd.DataFrame({"email": ["a@b"], "age": [3], "note": ["x"]})
    assert infer_signature(frame).pii_columns == ["email"]
    assert infer_signature(frame, pii=["note"]).pii_columns == ["note"]
    assert infer_signature(frame, pii=[]).pii_columns == []
    with pytest.raises(InvalidInput, match=r"pii names unknown column.*'phone'"):
        infer_signature(frame, pii=["phone"])


def test_tensors_have_no_pii_columns() -> None:
    assert infer_signature(np.zeros((2, 2)), pii=["anything"]).pii_columns == []


# -- validating tables ---------------------------------------------------------------------


def test_all_missing_and_extra_columns_are_listed() -> None:
    message = error_of(PEOPLE, [{"age": 1, "zip": 2, "z": 3}])
    assert "missing column(s) 'income', 'plan', 'active'" in message
    assert "unexpected column(s) 'zip', 'z'" in message
    assert message.endswith("the model expects: age, income, plan, active")


def test_text_that_is_not_a_number_names_column_row_and_value() -> None:
    rows = [ROW, ROW, ROW, ROW | {"age": "abc"}]
    assert error_of(PEOPLE, rows) == "column 'age' expects int64 but row 3 holds 'abc'"


def test_fractional_floats_are_refused_for_int_columns() -> None:
    message = error_of(PEOPLE, [ROW | {"age": 2.5}])
    assert "column 'age'" in message and "2.5" in message


def test_whole_floats_and_numeric_text_are_cast_to_the_int_dtype() -> None:
    out = PEOPLE.validate_input([ROW | {"age": 3.0}, ROW | {"age": "4"}])
    assert isinstance(out, pd.DataFrame)
    assert out["age"].dtype == np.int64 and list(out["age"]) == [3, 4]


def test_out_of_range_ints_are_refused() -> None:
    signature = table(x=col("x", "uint8"))
    assert "row 1 holds 300" in error_of(signature, {"x": [1, 300]})
    assert "row 0 holds -1" in error_of(signature, {"x": [-1]})


def test_bool_columns_take_booleans_or_zero_and_one() -> None:
    out = PEOPLE.validate_input([ROW | {"active": 1}, ROW | {"active": False}])
    assert isinstance(out, pd.DataFrame)
    assert out["active"].tolist() == [True, False]
    assert "column 'active' expects bool but row 0 holds 2" in error_of(
        PEOPLE, [ROW | {"active": 2}]
    )


def test_float_columns_take_ints() -> None:
    out = PEOPLE.validate_input([ROW | {"income": 7}])
    assert isinstance(out, pd.DataFrame)
    assert out["income"].dtype == np.float64


def test_string_columns_refuse_numbers() -> None:
    message = error_of(PEOPLE, [ROW, ROW | {"plan": 5}])
    assert message == "column 'plan' expects string but row 1 holds 5"


def test_missing_values_in_a_required_column_list_at_most_five_rows() -> None:
    rows = [ROW | {"age": None if i in (0, 2, 3, 4, 5, 6) else 1} for i in range(8)]
    message = error_of(PEOPLE, rows)
    assert message == (
        "column 'age' has missing values (rows 0, 2, 3, 4, 5, …) and the model does not accept them"
    )
    assert "(row 1)" in error_of(PEOPLE, [ROW, ROW | {"plan": None}])


def test_nullable_int_columns_with_missing_values_come_back_as_float64() -> None:
    signature = table(n=col("n", "int64", nullable=True))
    with_gap = signature.validate_input({"n": [1, None]})
    full = signature.validate_input({"n": [1, 2]})
    assert isinstance(with_gap, pd.DataFrame) and isinstance(full, pd.DataFrame)
    assert with_gap["n"].dtype == np.float64 and np.isnan(with_gap["n"][1])
    assert full["n"].dtype == np.int64


def test_datetimes_are_parsed_or_refused_by_column() -> None:
    signature = table(when=col("when", "datetime64[ns]"))
    out = signature.validate_input({"when": ["2024-05-01"]})
    assert isinstance(out, pd.DataFrame)
    assert out["when"].dtype == "datetime64[ns]"
    assert "column 'when'" in error_of(signature, {"when": ["not a date"]})


def test_the_callers_frame_is_never_changed() -> None:
    frame = pd.DataFrame({"active": [1], "plan": ["pro"], "income": [2], "age": [3.0]})
    before = frame.copy()
    out = PEOPLE.validate_input(frame)
    assert isinstance(out, pd.DataFrame)
    out.loc[0, "age"] = 99
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.columns) == ["age", "income", "plan", "active"]


def test_a_frame_that_already_fits_comes_back_as_a_copy() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [3, 4]})
    out = infer_signature(frame).validate_input(frame)
    assert isinstance(out, pd.DataFrame) and out is not frame
    out.loc[0, "x"] = 99.0
    assert frame.loc[0, "x"] == 1.0


def test_rows_as_lists_are_matched_to_columns_by_position() -> None:
    out = PEOPLE.validate_input([[30, None, "basic", 0]])
    assert isinstance(out, pd.DataFrame)
    assert out.iloc[0].tolist()[::2] == [30, "basic"]
    message = error_of(PEOPLE, [[30, 1.0, "basic", 0], [30, 1.0]])
    assert message.startswith("row 1 has 2 values but the model expects 4 columns")
    assert isinstance(
        PEOPLE.validate_input(np.array([[1, 2.0, "pro", 1]], dtype=object)), pd.DataFrame
    )


def test_a_dict_of_scalars_is_one_row() -> None:
    out = PEOPLE.validate_input(ROW)
    assert isinstance(out, pd.DataFrame) and len(out) == 1


def test_empty_input_gives_an_empty_frame_with_the_model_dtypes() -> None:
    out = PEOPLE.validate_input([])
    assert isinstance(out, pd.DataFrame)
    assert len(out) == 0 and list(out.columns) == ["age", "income", "plan", "active"]
    assert [str(t) for t in out.dtypes[["age", "income", "active"]]] == ["int64", "float64", "bool"]


@pytest.mark.parametrize("data", [None, "age=3", 42, [1, 2, 3]])
def test_input_that_is_not_rows_names_its_type(data: Any) -> None:
    assert type(data).__name__ in error_of(PEOPLE, data)


# -- validating tensors --------------------------------------------------------------------


IMAGE = Signature(tensor=TensorSpec(dtype="float32", shape=[-1, 3]))


def test_tensor_input_is_cast_to_the_signature_dtype() -> None:
    out = IMAGE.validate_input([[1, 2, 3], [4, 5, 6]])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, 3)
    frame_out = IMAGE.validate_input(pd.DataFrame([[1, 2, 3]]))
    assert isinstance(frame_out, np.ndarray) and frame_out.shape == (1, 3)


def test_tensor_shape_mismatch_shows_both_shapes() -> None:
    assert error_of(IMAGE, np.zeros((5, 2))) == "expected shape (-1, 3), got (5, 2)"
    assert error_of(IMAGE, np.zeros((5, 3, 1))) == "expected shape (-1, 3), got (5, 3, 1)"


def test_a_one_dimensional_input_of_the_row_length_is_one_row() -> None:
    out = IMAGE.validate_input([1.0, 2.0, 3.0])
    assert isinstance(out, np.ndarray) and out.shape == (1, 3)


def test_tensor_casts_that_lose_information_are_refused() -> None:
    assert "'abc' at row 1" in error_of(IMAGE, [[1, 2, 3], [1, "abc", 3]])
    ints = Signature(tensor=TensorSpec(dtype="int64", shape=[-1]))
    assert "2.5 at row 1" in error_of(ints, [1.0, 2.5])
    assert ints.validate_input([1.0, 2.0]).dtype == np.int64


def test_nan_is_refused_unless_the_tensor_is_nullable() -> None:
    data = np.ones((4, 3))
    data[2, 1] = np.nan
    assert error_of(IMAGE, data) == "input has NaN at row 2 and the model does not accept them"
    nullable = Signature(tensor=TensorSpec(dtype="float32", shape=[-1, 3], nullable=True))
    assert np.isnan(nullable.validate_input(data)).sum() == 1


def test_empty_tensor_input_has_the_right_shape() -> None:
    out = IMAGE.validate_input([])
    assert isinstance(out, np.ndarray) and out.shape == (0, 3) and out.dtype == np.float32


def test_text_tensors_take_text_only() -> None:
    signature = infer_signature(["a review", "another"])
    out = signature.validate_input(np.array(["x"]))
    assert isinstance(out, np.ndarray) and out.tolist() == ["x"]
    assert "3 at row 1" in error_of(signature, ["ok", 3])


# -- the model itself ----------------------------------------------------------------------


def test_a_signature_has_exactly_one_kind_of_input() -> None:
    with pytest.raises(ValidationError):
        Signature()
    with pytest.raises(ValidationError):
        Signature(columns=[col("a", "int64")], tensor=TensorSpec(dtype="float32", shape=[-1]))
    with pytest.raises(ValidationError, match="duplicate"):
        Signature(columns=[col("a", "int64"), col("a", "float64")])
    with pytest.raises(ValidationError, match="batch"):
        TensorSpec(dtype="float32", shape=[3])
    assert PEOPLE.kind == "table" and IMAGE.kind == "tensor"


def test_outputs_are_inferred_from_prediction_results() -> None:
    assert infer_output("predict", np.array(["yes", "no"], dtype=object)) == OutputSpec(
        name="predict", dtype="string", shape=[-1]
    )
    proba = infer_output("predict_proba", pd.DataFrame(np.zeros((3, 2))))
    assert proba == OutputSpec(name="predict_proba", dtype="float64", shape=[-1, 2])
    assert infer_output("predict", [1, 0]).dtype == "int64"
    with_outputs = IMAGE.with_outputs([proba])
    assert with_outputs.outputs == [proba] and IMAGE.outputs == []


# -- diff ----------------------------------------------------------------------------------


def test_diff_of_equal_signatures_is_empty() -> None:
    assert PEOPLE.diff(PEOPLE) == []


def test_diff_lists_column_changes() -> None:
    newer = Signature(
        columns=[
            col("age", "float64"),
            col("income", "float64"),
            col("plan", "string", categories=["basic", "team"], pii=True),
            col("region", "string"),
        ]
    )
    assert PEOPLE.diff(newer) == [
        "column 'active' removed (bool)",
        "column 'region' added (string)",
        "column 'age': int64 → float64",
        "column 'income': no longer accepts missing values",
        "column 'plan': categories added 'team'; categories removed 'pro'",
        "column 'plan': now marked as PII",
    ]


def test_diff_lists_tensor_output_and_kind_changes() -> None:
    wider = Signature(tensor=TensorSpec(dtype="float64", shape=[-1, 4]))
    proba = OutputSpec(name="predict_proba", dtype="float64", shape=[-1, 2])
    assert IMAGE.diff(wider.with_outputs([proba])) == [
        "tensor dtype: float32 → float64",
        "tensor shape: (-1, 3) → (-1, 4)",
        "output 'predict_proba' added (float64, shape (-1, 2))",
    ]
    assert PEOPLE.diff(IMAGE) == ["input changed from a table to a tensor"]
