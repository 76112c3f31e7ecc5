"""Validation finds every violation at once, with exact counts, examples and row numbers,
against a signature or a dataset version (its ranges too); and nothing in clean data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.data import DatasetVersion, ValidationReport, Violation, validate
from modelyard.data._validate import validate as check
from modelyard.data._versions import column_ranges
from modelyard.errors import InvalidInput
from modelyard.models import infer_signature
from modelyard.models._signature import ColumnSpec, Signature


def reference(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.uniform(10.0, 90.0, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "signed_up": pd.date_range("2024-01-01", periods=rows, freq="h"),
        }
    )


def version_of(frame: pd.DataFrame, **options: Any) -> DatasetVersion:
    return DatasetVersion(
        name="customers",
        version=2,
        digest="0" * 64,
        num_rows=len(frame),
        num_columns=len(frame.columns),
        schema=infer_signature(frame, **options),
        ranges=column_ranges(frame),
        profile={},
    )


def by_kind(report: ValidationReport) -> dict[tuple[str, str], Violation]:
    return {(v.column, v.kind): v for v in report.violations}


def test_every_violation_is_found_with_exact_counts() -> None:
    good = reference()
    bad = good.drop(columns=["signed_up"]).head(50).copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[[1, 2], "age"] = "old"  # wrong dtype
    bad.loc[[3, 4, 5], "age"] = 150  # out of range
    bad.loc[[6, 7, 8, 9], "income"] = np.nan  # nulls in a column that allows none
    bad.loc[10, "income"] = 5.0  # below the range
    bad.loc[[11, 12], "plan"] = "gold"  # unseen category
    bad["note"] = "x"  # extra column: a warning
    report = check(bad, version_of(good))
    found = by_kind(report)
    assert set(found) == {
        ("signed_up", "missing_column"),
        ("age", "dtype"),
        ("age", "range"),
        ("income", "null"),
        ("income", "range"),
        ("plan", "category"),
        ("note", "extra_column"),
    }
    assert found["age", "dtype"].count == 2 and found["age", "dtype"].rows == (1, 2)
    assert found["age", "dtype"].examples == ("old", "old")
    assert found["age", "range"].count == 3 and found["age", "range"].examples == (150.0,) * 3
    assert found["income", "null"].count == 4 and found["income", "null"].rows == (6, 7, 8, 9)
    assert found["income", "range"].count == 1 and found["income", "range"].rows == (10,)
    assert found["plan", "category"].count == 2
    assert found["plan", "category"].examples == ("gold", "gold")
    assert found["signed_up", "missing_column"].count == 50
    assert found["note", "extra_column"].severity == "warning"
    assert not report.ok and len(report.errors) == 6 and len(report.warnings) == 1
    assert report.against == "customers@2"
    assert report.to_dict()["violations"][0]["kind"] in {"missing_column", "dtype"}


def test_raise_for_violations_summarises_the_errors() -> None:
    frame = reference()
    bad = frame.copy()
    bad.loc[0, "plan"] = "gold"
    with pytest.raises(
        InvalidInput, match=r"1 schema violation\(s\) of customers@2: column 'plan'"
    ):
        check(bad, version_of(frame)).raise_for_violations()


def test_extra_columns_alone_are_only_warnings() -> None:
    frame = reference()
    report = check(frame.assign(extra=1), version_of(frame))
    assert report.ok and [v.kind for v in report.violations] == ["extra_column"]
    report.raise_for_violations()


def test_numbers_written_as_text_pass_and_datetimes_are_checked_in_utc() -> None:
    frame = reference(20)
    sent = frame.astype({"age": str, "income": str})
    sent["signed_up"] = frame["signed_up"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    assert check(sent, version_of(frame)).violations == []
    late = frame.copy()
    late.loc[[0, 1], "signed_up"] = pd.Timestamp("2030-01-01")
    found = by_kind(check(late, version_of(frame)))
    assert found["signed_up", "range"].count == 2


def test_a_signature_checks_dtypes_nulls_and_categories_without_ranges() -> None:
    schema = Signature(
        columns=[
            ColumnSpec(name="x", dtype="float64"),
            ColumnSpec(name="kind", dtype="string", categories=["a", "b"], nullable=True),
        ]
    )
    frame = pd.DataFrame({"x": [1e9, None, 2.0], "kind": ["a", None, "c"]})
    found = by_kind(validate(frame, schema))
    assert set(found) == {("x", "null"), ("kind", "category")}
    assert found["kind", "category"].rows == (2,)


def test_a_wrong_value_counts_once_not_also_as_missing() -> None:
    frame = reference(20)
    bad = frame.copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[0, "age"] = "x"
    bad.loc[1, "age"] = None
    found = by_kind(check(bad, version_of(frame)))
    assert found["age", "dtype"].rows == (0,)
    assert found["age", "null"].rows == (1,)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-1000, 1000),
            st.floats(allow_nan=False, allow_infinity=False, width=32),
            st.sampled_from(["a", "b", "c"]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.data(),
)
def test_a_frame_passes_its_own_version_and_broken_cells_are_all_counted(
    rows: list[tuple[int, float, str]], data: st.DataObject
) -> None:
    frame = pd.DataFrame(rows, columns=["n", "x", "k"])
    version = version_of(frame, categories={"k": ["a", "b", "c"]})
    assert check(frame, version).violations == []
    broken = data.draw(st.sets(st.integers(0, len(frame) - 1)))
    bad = frame.copy()
    bad.loc[sorted(broken), "n"] = frame["n"].max() + 1
    bad.loc[sorted(broken), "k"] = "zzz"
    found = by_kind(check(bad, version))
    counts = {kind: v.count for (_, kind), v in found.items()}
    assert counts == ({"range": len(broken), "category": len(broken)} if broken else {})
