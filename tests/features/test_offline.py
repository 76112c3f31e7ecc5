"""The offline point-in-time join, against a brute-force reference and on its edges."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features._brute import brute_training_frame
from modelyard.errors import InvalidInput, NotFound
from modelyard.features import _sources
from modelyard.features._definitions import (
    Entity,
    FeatureView,
    Field,
    SqlSource,
)
from modelyard.features._offline import training_frame

T0 = pd.Timestamp("2024-03-01 00:00:00")
HOUR = pd.Timedelta(hours=1)
DRIVER = Entity("driver")
RIDER = Entity("rider")
FEATURES = (Field("f0"), Field("f1", "int64"), Field("f2", "string"), Field("f3", "bool"))


def stats_view(source: object, name: str = "stats", **options: Any) -> FeatureView:
    options.setdefault("entities", [DRIVER])
    options.setdefault("features", FEATURES)
    options.setdefault("timestamp_field", "ts")
    return FeatureView(name, source=source, **options)


def feature_rows(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of (driver_id, event hour, created hour, f0) with f1..f3 derived from f0."""
    frame = pd.DataFrame(rows, columns=["driver_id", "ts", "created", "f0"])
    frame["ts"] = pd.to_datetime([None if h is None else T0 + h * HOUR for h in frame["ts"]])
    frame["created"] = pd.to_datetime(
        [None if h is None else T0 + h * HOUR for h in frame["created"]]
    )
    frame["f1"] = (frame["f0"].fillna(-1) * 10).astype("int64")
    frame["f2"] = [f"v{v}" for v in frame["f0"]]
    frame["f3"] = frame["f0"] > 1
    return frame


def label_rows(rows: list[tuple[Any, Any]]) -> pd.DataFrame:
    """Rows of (driver_id, hour) as labels, with a label column `y`."""
    return pd.DataFrame(
        {
            "driver_id": pd.array([k for k, _ in rows], dtype="Int64"),
            "event_timestamp": pd.to_datetime(
                [None if h is None else T0 + h * HOUR for _, h in rows]
            ),
            "y": np.arange(len(rows)),
        }
    )


def assert_same_cells(result: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every cell equal, NaN/None/NaT/NA counting as equal to each other."""
    assert list(result.columns) == list(expected.columns)
    assert isinstance(result.index, pd.RangeIndex)
    assert len(result) == len(expected)
    for column in result.columns:
        for i, (got, want) in enumerate(zip(result[column], expected[column], strict=True)):
            if pd.isna(want):
                assert pd.isna(got), (column, i, got, want)
            else:
                assert got == want, (column, i, got, want)


def join(labels: pd.DataFrame, views: list[FeatureView], refs: list[str], **kw: Any) -> Any:
    return training_frame(labels, {v.name: v for v in views}, refs, **kw)


ALL_STATS = ["stats:f0", "stats:f1", "stats:f2", "stats:f3"]


# -- properties -----------------------------------------------------------------------------


hours = st.integers(0, 6)
keys = st.integers(0, 3)
source_row = st.tuples(
    keys,
    st.one_of(st.none(), hours) | hours,
    st.one_of(st.none(), hours),
    st.sampled_from([0.5, 1.5, 2.0, float("nan")]),
)
label_row = st.tuples(st.one_of(st.none(), keys) | keys, st.one_of(st.none(), hours) | hours)
ttls = st.one_of(st.none(), st.integers(1, 3).map(lambda h: timedelta(hours=h)))


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(source_row, max_size=14),
    labels=st.lists(label_row, min_size=1, max_size=12),
    ttl=ttls,
    created=st.booleans(),
    as_parquet=st.booleans(),
)
def test_the_join_agrees_with_brute_force(
    rows: list[tuple[Any, ...]],
    labels: list[tuple[Any, Any]],
    ttl: timedelta | None,
    created: bool,
    as_parquet: bool,
) -> None:
    frame = feature_rows(rows)
    with tempfile.TemporaryDirectory() as folder:
        source: object = frame
        if as_parquet:
            source = str(Path(folder) / "stats.parquet")
            frame.to_parquet(source)
        view = stats_view(source, ttl=ttl, created_timestamp_field="created" if created else None)
        label_frame = label_rows(labels)
        result = join(label_frame, [view], ALL_STATS)
        expected = brute_training_frame(label_frame, {"stats": view}, ALL_STATS)
    assert_same_cells(result, expected)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(keys, keys, hours, st.floats(0, 9, allow_nan=False)), max_size=14),
    labels=st.lists(st.tuples(keys, keys, hours), min_size=1, max_size=10),
    ttl=ttls,
)
def test_two_views_with_compound_keys_agree_with_brute_force(
    rows: list[tuple[int, int, int, float]],
    labels: list[tuple[int, int, int]],
    ttl: timedelta | None,
) -> None:
    trips = pd.DataFrame(rows, columns=["driver_id", "rider_id", "ts", "x"])
    trips["ts"] = T0 + trips["ts"].astype("int64") * HOUR
    drivers = trips.drop(columns="rider_id").rename(columns={"x": "f0"})
    pair = stats_view(trips, "pair", entities=[DRIVER, RIDER], features=["x"], ttl=ttl)
    single = stats_view(drivers, "single", features=["f0"])
    label_frame = pd.DataFrame(labels, columns=["driver_id", "rider_id", "event_timestamp"])
    label_frame["event_timestamp"] = T0 + label_frame["event_timestamp"] * HOUR
    views = {"pair": pair, "single": single}
    refs = ["single:f0", "pair:x"]
    result = training_frame(label_frame, views, refs, full_feature_names=True)
    expected = brute_training_frame(label_frame, views, refs, full_feature_names=True)
    assert_same_cells(result, expected)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(source_row, max_size=12),
    labels=st.lists(label_row, min_size=1, max_size=10),
    ttl=ttls,
    zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
)
def test_aware_times_are_compared_in_utc(
    rows: list[tuple[Any, ...]],
    labels: list[tuple[Any, Any]],
    ttl: timedelta | None,
    zone: str,
) -> None:
    frame = feature_rows(rows)
    frame["ts"] = frame["ts"].dt.tz_localize("UTC").dt.tz_convert(zone)
    frame["created"] = frame["created"].dt.tz_localize("Europe/Paris")
    label_frame = label_rows(labels)
    label_frame["event_timestamp"] = label_frame["event_timestamp"].dt.tz_localize("UTC")
    view = stats_view(frame, ttl=ttl, created_timestamp_field="created")
    result = join(label_frame, [view], ALL_STATS)
    expected = brute_training_frame(label_frame, {"stats": view}, ALL_STATS)
    assert_same_cells(result, expected)


# -- examples -------------------------------------------------------------------------------


def test_ties_on_event_time_are_broken_by_created_time() -> None:
    rows = feature_rows([(1, 1, 3, 2.0), (1, 1, 5, 1.5), (1, 1, 4, 0.5)])
    view = stats_view(rows, created_timestamp_field="created")
    result = join(label_rows([(1, 2)]), [view], ["stats:f0"])
    assert result["f0"].tolist() == [1.5]


def test_a_null_created_time_loses_a_tie() -> None:
    rows = feature_rows([(1, 1, 3, 2.0), (1, 1, None, 1.5)])
    view = stats_view(rows, created_timestamp_field="created")
    assert join(label_rows([(1, 2)]), [view], ["stats:f0"])["f0"].tolist() == [2.0]


def test_a_remaining_tie_goes_to_the_last_source_row() -> None:
    rows = feature_rows([(1, 1, 3, 2.0), (1, 1, 3, 0.5), (1, 1, 3, 1.5)])
    view = stats_view(rows, created_timestamp_field="created")
    assert join(label_rows([(1, 2)]), [view], ["stats:f0"])["f0"].tolist() == [1.5]


def test_a_later_event_time_wins_over_a_later_created_time() -> None:
    rows = feature_rows([(1, 2, 2, 2.0), (1, 1, 9, 0.5)])
    view = stats_view(rows, created_timestamp_field="created")
    assert join(label_rows([(1, 3)]), [view], ["stats:f0"])["f0"].tolist() == [2.0]


def test_a_feature_at_the_label_time_is_seen_and_a_later_one_is_not() -> None:
    rows = feature_rows([(1, 1, None, 0.5), (1, 2, None, 1.5)])
    result = join(label_rows([(1, 1), (1, 2), (1, 0)]), [stats_view(rows)], ["stats:f0"])
    assert result["f0"].tolist()[:2] == [0.5, 1.5]
    assert np.isnan(result["f0"].iloc[2])


def test_a_label_exactly_ttl_after_the_feature_still_sees_it() -> None:
    rows = feature_rows([(1, 1, None, 0.5)])
    labels = label_rows([(1, 3), (1, 3)])
    labels.loc[1, "event_timestamp"] += pd.Timedelta(microseconds=1)
    result = join(labels, [stats_view(rows, ttl=timedelta(hours=2))], ["stats:f0"])
    assert result["f0"].iloc[0] == 0.5
    assert np.isnan(result["f0"].iloc[1])


def test_an_expired_latest_row_does_not_fall_back_to_an_older_one() -> None:
    rows = feature_rows([(1, 0, None, 0.5), (1, 1, None, 1.5)])
    result = join(label_rows([(1, 4)]), [stats_view(rows, ttl=timedelta(hours=2))], ["stats:f0"])
    assert np.isnan(result["f0"].iloc[0])


def test_sub_second_order_is_kept() -> None:
    rows = feature_rows([(1, 1, None, 0.5), (1, 1, None, 1.5)])
    rows.loc[1, "ts"] += pd.Timedelta(microseconds=1)
    labels = label_rows([(1, 1), (1, 1)])
    labels.loc[1, "event_timestamp"] += pd.Timedelta(microseconds=1)
    assert join(labels, [stats_view(rows)], ["stats:f0"])["f0"].tolist() == [0.5, 1.5]


def test_every_label_row_comes_back_in_order_with_duplicates() -> None:
    rows = feature_rows([(1, 0, None, 0.5), (2, 0, None, 1.5), (1, 0, None, 2.0)])
    labels = label_rows([(2, 1), (1, 1), (2, 1), (3, 1), (1, 1), (2, 1)])
    labels.index = pd.Index([10, 5, 7, 7, 1, 0])
    result = join(labels, [stats_view(rows)], ["stats:f0", "stats:f2"])
    assert list(result.columns) == ["driver_id", "event_timestamp", "y", "f0", "f2"]
    assert isinstance(result.index, pd.RangeIndex)
    assert result["y"].tolist() == [0, 1, 2, 3, 4, 5]
    assert result["f0"].fillna(-1).tolist() == [1.5, 2.0, 1.5, -1, 2.0, 1.5]


def test_missing_values_keep_the_kind_of_the_feature() -> None:
    rows = feature_rows([(1, 0, 0, 0.5)])
    refs = [*ALL_STATS, "stats:created"]
    view = stats_view(rows, features=[*FEATURES, Field("created", "timestamp")])
    result = join(label_rows([(1, 1), (2, 1)]), [view], refs)
    assert [str(t) for t in result.dtypes.iloc[3:7]] == ["float64", "Int64", "string", "boolean"]
    assert result.iloc[0, 3:].tolist() == [0.5, 5, "v0.5", False, T0]
    assert result.iloc[1, 3:].isna().all()


def test_a_null_label_key_matches_nothing() -> None:
    rows = pd.DataFrame({"driver_id": [None, 1.0], "ts": [T0, T0], "f0": [0.5, 1.5]})
    labels = pd.DataFrame({"driver_id": [None, 1.0], "event_timestamp": [T0, T0]})
    result = join(labels, [stats_view(rows, features=["f0"])], ["stats:f0"])
    assert np.isnan(result["f0"].iloc[0])
    assert result["f0"].iloc[1] == 1.5


def test_source_rows_without_an_event_time_are_ignored() -> None:
    rows = feature_rows([(1, 0, None, 0.5), (1, None, None, 1.5)])
    assert join(label_rows([(1, 2)]), [stats_view(rows)], ["stats:f0"])["f0"].tolist() == [0.5]


def test_transform_is_applied_before_the_join() -> None:
    def doubled(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(f0=frame["f0"] * 2)[frame["f0"] < 1.8]

    rows = feature_rows([(1, 0, None, 0.5), (1, 1, None, 2.0)])
    view = stats_view(rows, transform=doubled)
    assert join(label_rows([(1, 2)]), [view], ["stats:f0"])["f0"].tolist() == [1.0]


def test_transform_on_parquet_runs_batch_by_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sources, "_BATCH_ROWS", 2)
    sizes: list[int] = []

    def counted(frame: pd.DataFrame) -> pd.DataFrame:
        sizes.append(len(frame))
        return frame.assign(f0=frame["f0"] + 1)

    rows = feature_rows([(1, h, None, 0.5 * h) for h in range(5)])
    rows.to_parquet(tmp_path / "stats.parquet")
    view = stats_view(str(tmp_path / "stats.parquet"), transform=counted)
    result = join(label_rows([(1, 3), (1, 9)]), [view], ["stats:f0"])
    assert result["f0"].tolist() == [2.5, 3.0]
    assert max(sizes) <= 2


def test_transform_that_drops_a_join_key_is_refused() -> None:
    rows = feature_rows([(1, 0, None, 0.5)])
    view = stats_view(rows, transform=lambda frame: frame.drop(columns="driver_id"))
    with pytest.raises(InvalidInput, match=r"transform of feature view 'stats'.*driver_id"):
        join(label_rows([(1, 2)]), [view], ["stats:f0"])


def test_parquet_file_source(tmp_path: Path) -> None:
    feature_rows([(1, 0, None, 0.5)]).to_parquet(tmp_path / "one.parquet")
    view = stats_view(str(tmp_path / "one.parquet"))
    assert join(label_rows([(1, 2)]), [view], ["stats:f1"])["f1"].tolist() == [5]


def test_parquet_folder_source(tmp_path: Path) -> None:
    folder = tmp_path / "stats"
    (folder / "day=1").mkdir(parents=True)
    feature_rows([(1, 0, None, 0.5), (2, 1, None, 2.0)]).to_parquet(folder / "part-0.parquet")
    feature_rows([(1, 1, None, 1.5), (2, 1, None, 0.5)]).to_parquet(folder / "part-1.parquet")
    view = stats_view(str(folder))
    labels = label_rows([(1, 0), (1, 2), (2, 2)])
    result = join(labels, [view], ALL_STATS)
    assert result["f0"].tolist() == [0.5, 1.5, 0.5]
    assert_same_cells(result, brute_training_frame(labels, {"stats": view}, ALL_STATS))


def test_sql_source_on_duckdb() -> None:
    query = """
        SELECT * FROM (VALUES
            (1, TIMESTAMP '2024-03-01 00:00:00', 0.5),
            (1, TIMESTAMP '2024-03-01 02:00:00', 1.5),
            (2, TIMESTAMP '2024-03-01 01:00:00', 2.5)
        ) AS t(driver_id, ts, f0)
    """
    view = stats_view(SqlSource(query), features=["f0"])
    result = join(label_rows([(1, 1), (1, 2), (2, 0)]), [view], ["stats:f0"])
    assert result["f0"].fillna(-1).tolist() == [0.5, 1.5, -1]


def test_sql_source_on_duckdb_with_a_transform() -> None:
    query = "SELECT 1 AS driver_id, TIMESTAMP '2024-03-01' AS ts, 0.5 AS f0"
    view = stats_view(SqlSource(query), features=["f0"], transform=lambda f: f.assign(f0=7.0))
    assert join(label_rows([(1, 1)]), [view], ["stats:f0"])["f0"].tolist() == [7.0]


def test_sql_source_on_postgresql(pg_url: str) -> None:
    import sqlalchemy

    rows = feature_rows([(1, 0, None, 0.5), (1, 1, None, 1.5)])
    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as connection:
        rows.to_sql("stats", connection, index=False)
    engine.dispose()
    view = stats_view(SqlSource("SELECT * FROM stats", url=pg_url))
    result = join(label_rows([(1, 0), (1, 5)]), [view], ["stats:f0", "stats:f1"])
    assert result["f0"].tolist() == [0.5, 1.5]
    assert result["f1"].tolist() == [5, 15]


def test_overlapping_feature_names_need_full_feature_names() -> None:
    rows = feature_rows([(1, 0, None, 0.5)])
    views = [stats_view(rows), stats_view(rows.assign(f0=9.0), "other")]
    with pytest.raises(InvalidInput, match="full_feature_names=True"):
        join(label_rows([(1, 1)]), views, ["stats:f0", "other:f0"])
    result = join(label_rows([(1, 1)]), views, ["other:f0", "stats:f0"], full_feature_names=True)
    assert list(result.columns)[-2:] == ["other__f0", "stats__f0"]
    assert result.iloc[0, -2:].tolist() == [9.0, 0.5]


# -- bad input ------------------------------------------------------------------------------


def refused(call: Callable[[], object], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        call()


VIEW = stats_view(feature_rows([(1, 0, None, 0.5)]))


def test_no_features_asked_for_is_refused() -> None:
    refused(lambda: join(label_rows([(1, 1)]), [VIEW], []), InvalidInput, "no features")


def test_an_unknown_view_is_refused_with_the_known_ones() -> None:
    refused(lambda: join(label_rows([(1, 1)]), [VIEW], ["nope:f0"]), NotFound, "known views: stats")


def test_an_unknown_feature_is_refused_with_the_view_features() -> None:
    refused(
        lambda: join(label_rows([(1, 1)]), [VIEW], ["stats:zz"]), InvalidInput, "f0, f1, f2, f3"
    )


def test_labels_without_the_timestamp_column_are_refused() -> None:
    labels = label_rows([(1, 1)]).rename(columns={"event_timestamp": "when"})
    refused(lambda: join(labels, [VIEW], ["stats:f0"]), InvalidInput, r"\['event_timestamp'\]")


def test_labels_without_a_join_key_are_refused_naming_the_view() -> None:
    labels = label_rows([(1, 1)]).drop(columns="driver_id")
    refused(lambda: join(labels, [VIEW], ["stats:f0"]), InvalidInput, r"\['driver_id'\].*'stats'")


def test_a_source_missing_a_declared_column_is_refused() -> None:
    view = stats_view(feature_rows([(1, 0, None, 0.5)]).drop(columns=["f1"]))
    refused(lambda: join(label_rows([(1, 1)]), [view], ["stats:f0"]), InvalidInput, "'f1'")


def test_string_label_times_are_refused() -> None:
    labels = label_rows([(1, 1)]).assign(event_timestamp="2024-03-01")
    refused(lambda: join(labels, [VIEW], ["stats:f0"]), InvalidInput, "pandas.to_datetime")


def test_mixing_naive_and_aware_times_is_refused() -> None:
    labels = label_rows([(1, 1)])
    labels["event_timestamp"] = labels["event_timestamp"].dt.tz_localize("UTC")
    refused(
        lambda: join(labels, [VIEW], ["stats:f0"]),
        InvalidInput,
        "'event_timestamp' and column 'ts'.*timezone",
    )


def test_a_feature_name_taken_by_a_label_column_is_refused() -> None:
    labels = label_rows([(1, 1)]).assign(f0=1)
    refused(lambda: join(labels, [VIEW], ["stats:f0"]), InvalidInput, r"\['f0'\]")


def test_parquet_source_at_an_fsspec_url() -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    with memory.open("/offline-test/stats.parquet", "wb") as file:
        feature_rows([(1, 0, None, 0.5), (1, 1, None, 1.5)]).to_parquet(file)
    view = stats_view("memory://offline-test/stats.parquet")
    try:
        result = join(label_rows([(1, 0), (1, 3)]), [view], ["stats:f0"])
    finally:
        memory.rm("/offline-test", recursive=True)
    assert result["f0"].tolist() == [0.5, 1.5]
