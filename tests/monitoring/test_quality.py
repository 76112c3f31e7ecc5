"""Data quality of served traffic: missing values, ranges, new categories, refused values,
duplicates — each against the reference and the model's signature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modelyard as my
from modelyard.errors import InvalidInput
from modelyard.models import infer_signature


def reference_rows(rows: int = 2_000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "age": rng.integers(18, 90, rows),
            "income": np.where(rng.random(rows) < 0.02, np.nan, rng.normal(50, 10, rows)),
            "city": rng.choice(["oslo", "rome", "lima"], rows),
        }
    )


def test_clean_traffic_has_no_issues() -> None:
    reference = reference_rows()
    signature = infer_signature(reference)
    current = reference_rows().sample(500, random_state=1)
    report = my.monitoring.data_quality(current, reference=reference, signature=signature, key="id")
    assert report.issues == []
    assert report.columns["income"].reference_missing_rate == pytest.approx(0.02, abs=0.01)


def test_broken_traffic_shows_each_problem_with_its_count() -> None:
    reference = reference_rows()
    signature = infer_signature(reference)
    current = reference_rows().iloc[:1_000].copy()
    current.loc[:299, "income"] = np.nan  # 30 % missing, against 2 %
    current.loc[:49, "age"] = 150  # outside the reference's range
    current["city"] = current["city"].astype(object)
    current.loc[:39, "city"] = "paris"  # a category never seen
    current = pd.concat([current, current.iloc[:5]])  # 5 rows (broken ones) twice
    report = my.monitoring.data_quality(current, reference=reference, signature=signature, key="id")
    issues = " | ".join(report.issues)
    assert report.columns["income"].missing_rate > 0.3
    assert "income: " in issues and "% missing, up from 2." in issues
    assert report.columns["age"].out_of_range == 55
    assert "outside the reference's range [18, 89]" in issues
    assert report.columns["city"].unseen == 45
    assert report.columns["city"].invalid == 45  # the signature knows the categories too
    assert "'paris'" in report.columns["city"].examples
    assert report.duplicate_rows == 5 and report.duplicate_keys == 10
    assert report.to_dict()["issues"] == report.issues


def test_a_few_odd_rows_are_not_an_issue() -> None:
    reference = reference_rows()
    current = reference_rows().iloc[:1_000].copy()
    current.loc[:2, "age"] = 150  # 0.3 %: below max_share
    report = my.monitoring.data_quality(current, reference=reference)
    assert report.columns["age"].out_of_range == 3
    assert report.issues == []


def test_bad_input_is_refused() -> None:
    reference = reference_rows()
    with pytest.raises(InvalidInput, match="lacks column"):
        my.monitoring.data_quality(reference.assign(extra=1), reference=reference)
    with pytest.raises(InvalidInput, match="key column"):
        my.monitoring.data_quality(reference, key="customer")
    with pytest.raises(InvalidInput, match="DataFrame"):
        my.monitoring.data_quality([1, 2])  # type: ignore[arg-type]
