"""Dataset versions on SQLite and PostgreSQL: content-hashed, numbered per name, with the
schema, ranges, profile and lineage they were logged with; and their comparison."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.data import DatasetVersions
from modelyard.data._versions import compare_versions, parse_ref, read_dataset
from modelyard.errors import InvalidInput, NotFound
from modelyard.store import MetadataStore
from modelyard.tracking._datasets import describe_dataset


@pytest.fixture
def versions(db_url: str) -> Iterator[DatasetVersions]:
    metadata = MetadataStore(db_url)
    yield DatasetVersions(metadata)
    metadata.close()


def customers(rows: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(50.0, 10.0, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "signed_up": pd.date_range("2024-01-01", periods=rows, freq="h"),
            "email": [f"u{i}@example.com" for i in range(rows)],
        }
    )


def test_identical_content_returns_the_existing_version(versions: DatasetVersions) -> None:
    first = versions.log(customers(), name="customers", actor="ana")
    again = versions.log(customers(), name="customers", description="ignored")
    assert (first.version, again.version) == (1, 1)
    assert again.description == ""
    assert len(versions.all("customers")) == 1


def test_new_content_gets_the_next_version(versions: DatasetVersions) -> None:
    versions.log(customers(seed=0), name="customers")
    second = versions.log(customers(seed=1), name="customers")
    third = versions.log(customers(seed=2), name="customers")
    assert (second.version, third.version) == (2, 3)
    assert versions.get("customers").version == 3
    assert versions.get("customers", 2).digest == second.digest
    assert [v.version for v in versions.all("customers")] == [1, 2, 3]
    # going back to old content finds its version again
    assert versions.log(customers(seed=0), name="customers").version == 1


def test_versions_are_numbered_per_name(versions: DatasetVersions) -> None:
    versions.log(customers(seed=0), name="a")
    versions.log(customers(seed=1), name="a")
    assert versions.log(customers(seed=0), name="b").version == 1
    assert [(v.name, v.version) for v in versions.all()] == [("a", 2), ("b", 1)]


def test_the_digest_is_the_one_a_run_records(versions: DatasetVersions) -> None:
    frame = customers()
    version = versions.log(frame, name="customers")
    assert version.digest == describe_dataset(frame, name="x", role="training").digest
    assert [v.ref for v in versions.with_digests([version.digest])] == ["customers@1"]


def test_schema_ranges_profile_and_lineage_are_stored(versions: DatasetVersions) -> None:
    frame = customers()
    frame.loc[3, "income"] = np.nan
    lineage = {"feature_views": [{"name": "spend", "version": 2}], "labels": "churn@1"}
    stored = versions.log(frame, name="customers", lineage=lineage, tags={"team": "growth"})
    version = versions.get("customers", 1)
    assert version == stored
    columns = {c.name: c for c in version.columns}
    assert columns["age"].dtype == "int64" and not columns["age"].nullable
    assert columns["income"].nullable
    assert columns["plan"].categories == ["basic", "plus", "pro"]
    assert columns["email"].pii
    assert version.ranges["age"] == {"min": frame["age"].min(), "max": frame["age"].max()}
    assert version.ranges["signed_up"]["max"] == "2024-01-05T23:00:00"
    assert "plan" not in version.ranges
    assert version.profile["rows"] == 120
    assert version.lineage == lineage and version.tags == {"team": "growth"}
    assert (version.num_rows, version.num_columns) == (120, 5)


def test_parquet_files_folders_and_csv_are_read(tmp_path: Path) -> None:
    frame = customers(20)
    frame.to_parquet(tmp_path / "one.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:10].to_parquet(folder / "a.parquet")
    frame.iloc[10:].to_parquet(folder / "b.parquet")
    frame.to_csv(tmp_path / "one.csv", index=False)
    one, digest = read_dataset(tmp_path / "one.parquet")
    assert len(one) == 20
    assert digest == describe_dataset(tmp_path / "one.parquet", name="x", role="r").digest
    assert len(read_dataset(folder)[0]) == 20
    assert list(read_dataset(tmp_path / "one.csv")[0].columns) == list(frame.columns)
    with pytest.raises(InvalidInput, match="no file"):
        read_dataset(tmp_path / "nothing.parquet")


def test_bad_names_lineage_and_unknown_versions_are_refused(versions: DatasetVersions) -> None:
    with pytest.raises(InvalidInput, match="invalid dataset name"):
        versions.log(customers(), name="a@1")
    with pytest.raises(InvalidInput, match="JSON"):
        versions.log(customers(), name="a", lineage={"when": object()})
    with pytest.raises(NotFound, match="no dataset 'nope'; datasets: none"):
        versions.get("nope")
    versions.log(customers(), name="a")
    with pytest.raises(NotFound, match="has no version 7; versions: 1"):
        versions.resolve("a@7")
    assert parse_ref("a@3") == ("a", 3) and parse_ref("a") == ("a", None)


def test_compare_reports_schema_range_and_drift_changes(versions: DatasetVersions) -> None:
    old = customers(200, seed=0)
    new = customers(150, seed=1).drop(columns=["email"])
    new["income"] = new["income"] + 30.0
    new.loc[:9, "age"] = None
    new["region"] = "eu"
    a = versions.log(old, name="c")
    b = versions.log(new, name="c")
    comparison = compare_versions(a, b)
    assert comparison.rows == (200, 150)
    assert comparison.added == ["region"] and comparison.removed == ["email"]
    text = "\n".join(comparison.changes)
    assert "column 'age': int64 → float64" in text
    assert "column 'age': now accepts missing values" in text
    assert "column 'income': range" in text
    assert comparison.drift["income"]["mean_change"] == pytest.approx(30.0, abs=3.0)
    assert comparison.drift["age"]["missing_rate_b"] == pytest.approx(10 / 150)
    assert comparison.to_dict()["rows"]["change"] == -50
