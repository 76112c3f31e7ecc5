"""The feature store through the SDK, on real stores: definitions applied from Python, a
training frame from Parquet, materialization (a range, then incrementally), online reads
with the TTL honoured, pushes — online on SQLite and on Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelyard as my
from modelyard.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DRIVERS = 20
HOUR_MS = 3_600_000


def driver_rows(seed: int = 0) -> pd.DataFrame:
    """Hourly stats of every driver for 48 hours, and a late correction of one row (same
    event time, later created time)."""
    rng = np.random.default_rng(seed)
    times = [T0 + timedelta(hours=h) for h in range(48)]
    frame = pd.DataFrame(
        [
            {
                "driver_id": d,
                "event_ts": t,
                "created": t,
                "trips": int(rng.integers(0, 50)),
                "rating": float(rng.uniform(3, 5)),
            }
            for d in range(DRIVERS)
            for t in times
        ]
    )
    fix = frame.iloc[[5]].assign(created=frame["created"].iloc[5] + timedelta(minutes=5), trips=999)
    return pd.concat([frame, fix], ignore_index=True)


def definitions(folder: Path, ttl: timedelta = timedelta(hours=2)) -> list[object]:
    driver = my.features.Entity("driver", ["driver_id"])
    stats = my.features.FeatureView(
        "driver_stats",
        entities=[driver],
        source=str(folder),
        timestamp_field="event_ts",
        created_timestamp_field="created",
        ttl=ttl,
        features=[my.features.Field("trips", "int64"), my.features.Field("rating", "float64")],
    )
    return [driver, stats, my.features.FeatureService("churn_v1", [stats])]


@pytest.fixture(params=["sqlite", "redis"])
def yard(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The SDK on fresh stores with the driver stats in a Parquet folder (two files), online
    on SQLite or on Redis; the Parquet folder is yielded."""
    online = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        online = f"{url}?prefix={request.getfixturevalue('redis_prefix')}"
    folder = tmp_path / "driver_stats"
    folder.mkdir()
    rows = driver_rows()
    rows.iloc[: len(rows) // 2].to_parquet(folder / "part-0.parquet")
    rows.iloc[len(rows) // 2 :].to_parquet(folder / "part-1.parquet")
    my.configure(home=tmp_path / "home", online_url=online)
    try:
        yield folder
    finally:
        my.configure(home=tmp_path / "unused")


@pytest.fixture
def materialized(yard: Path) -> Path:
    """The driver stats applied and materialized up to T0 + 10 h."""
    my.features.apply(definitions(yard))
    my.features.materialize(start=T0, end=T0 + timedelta(hours=10))
    return yard


def latest(rows: pd.DataFrame, driver: int, before: datetime) -> pd.Series:
    mine = rows[(rows["driver_id"] == driver) & (rows["event_ts"] < before)]
    return mine.sort_values(["event_ts", "created"], kind="stable").iloc[-1]


def test_a_training_frame_joins_point_in_time_through_a_service(yard: Path) -> None:
    my.features.apply(definitions(yard))
    labels = pd.DataFrame(
        {
            "driver_id": [3, 0, 3, 7, 99],
            "event_timestamp": [
                T0 + timedelta(hours=10, minutes=30),
                T0 + timedelta(hours=5),
                T0 + timedelta(hours=10, minutes=30),
                T0 - timedelta(hours=1),
                T0 + timedelta(hours=3),
            ],
            "label": [1, 0, 1, 0, 1],
        }
    )
    frame = my.features.get_training_frame(labels, service="churn_v1")
    assert list(frame.columns) == ["driver_id", "event_timestamp", "label", "trips", "rating"]
    rows = driver_rows()
    expected = latest(rows, 3, T0 + timedelta(hours=10, minutes=31))
    assert frame["trips"].iloc[0] == expected["trips"] == frame["trips"].iloc[2]
    assert frame["trips"].iloc[1] == 999  # driver 0 at hour 5: the late correction wins
    assert pd.isna(frame["trips"].iloc[3]) and pd.isna(frame["trips"].iloc[4])  # none before


def test_materialized_values_are_the_latest_per_entity_and_expire_with_the_ttl(
    yard: Path,
) -> None:
    my.features.apply(definitions(yard))
    end = T0 + timedelta(hours=10)
    written = my.features.materialize(start=T0, end=end)
    assert written == {"driver_stats": DRIVERS}
    rows = driver_rows()
    entities = {"driver_id": [0, 1, 2, 404]}
    found = my.features.get_online(entities, ["driver_stats:trips", "driver_stats:rating"])
    # now is long after T0 + 10h: with a 2h TTL every value has expired
    assert [s["driver_stats"] for s in found.status] == ["expired"] * 3 + ["missing"]
    assert all(row["trips"] is None for row in found.rows)
    store = my.features._default.default_feature_store()
    at = end + timedelta(minutes=30)
    found = store.get_online(entities, ["driver_stats:trips", "driver_stats:rating"], now=at)
    assert [s["driver_stats"] for s in found.status] == ["ok", "ok", "ok", "missing"]
    for row in found.rows[:3]:
        expected = latest(rows, row["driver_id"], end)
        assert (row["trips"], row["rating"]) == (expected["trips"], expected["rating"])
    assert found.age_s[0]["driver_stats"] == pytest.approx(90 * 60)


def test_incremental_materialization_continues_from_the_watermark(yard: Path) -> None:
    my.features.apply(definitions(yard))
    store = my.features._default.default_feature_store()
    my.features.materialize(end=T0 + timedelta(hours=5))
    assert store.online.watermark("driver_stats") == int(
        (T0 + timedelta(hours=5)).timestamp() * 1000
    )
    again = my.features.materialize(incremental=True, end=T0 + timedelta(hours=5))
    assert again == {"driver_stats": 0}  # nothing new
    later = T0 + timedelta(hours=30)
    assert my.features.materialize(incremental=True, end=later) == {"driver_stats": DRIVERS}
    found = store.get_online({"driver_id": [4]}, service="churn_v1", now=later)
    assert found.rows[0]["trips"] == latest(driver_rows(), 4, later)["trips"]
    with pytest.raises(InvalidInput, match="not both"):
        my.features.materialize(incremental=True, start=T0)


def test_a_push_replaces_older_values_only_and_checks_types(yard: Path) -> None:
    my.features.apply(definitions(yard))
    store = my.features._default.default_feature_store()
    at = T0 + timedelta(hours=1)
    row = {"driver_id": 1, "event_ts": at, "created": at, "trips": 7, "rating": 4.5}
    assert my.features.push("driver_stats", [row]) == 1
    older = {**row, "event_ts": at - timedelta(minutes=1), "trips": 1}
    assert my.features.push("driver_stats", [older]) == 0  # a late row changes nothing
    found = store.get_online({"driver_id": [1]}, ["driver_stats:trips"], now=at)
    assert found.rows[0]["trips"] == 7
    asked = (ref for ref in ["driver_stats:trips"])  # an iterable is read once
    assert store.get_online({"driver_id": 1}, asked, now=at).rows == [{"driver_id": 1, "trips": 7}]
    with pytest.raises(InvalidInput, match="trips"):
        my.features.push("driver_stats", [{**row, "trips": "many"}])
    with pytest.raises(InvalidInput, match="lack the columns"):
        my.features.push("driver_stats", [{"driver_id": 1, "event_ts": at}])


def test_a_view_with_a_transform_is_used_offline_and_online_alike(yard: Path) -> None:
    driver, stats, _ = definitions(yard)

    def per_hour(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(trips_per_hour=frame["trips"] / 1.0)

    derived = my.features.FeatureView(
        "driver_rates",
        entities=[driver],
        source=str(yard),
        timestamp_field="event_ts",
        created_timestamp_field="created",
        features=[my.features.Field("trips_per_hour", "float64")],
        transform=per_hour,
    )
    my.features.apply([driver, stats, derived])
    at = T0 + timedelta(hours=3)
    labels = pd.DataFrame({"driver_id": [2], "event_timestamp": [at]})
    offline = my.features.get_training_frame(labels, ["driver_rates:trips_per_hour"])
    my.features.materialize(["driver_rates"], end=at + timedelta(microseconds=1))
    store = my.features._default.default_feature_store()
    online = store.get_online({"driver_id": [2]}, ["driver_rates:trips_per_hour"], now=at)
    assert online.rows[0]["trips_per_hour"] == offline["trips_per_hour"].iloc[0]
    trips = latest(driver_rows(), 2, at + timedelta(seconds=1))["trips"]
    assert offline["trips_per_hour"].iloc[0] == trips
    # features of two views in one request, one of them not materialized yet
    both = ["driver_stats:trips", "driver_rates:trips_per_hour"]
    found = store.get_online({"driver_id": [2, 404]}, both, now=at)
    assert found.status == [
        {"driver_stats": "missing", "driver_rates": "ok"},
        {"driver_stats": "missing", "driver_rates": "missing"},
    ]
    my.features.materialize(["driver_stats"], end=at + timedelta(microseconds=1))
    found = store.get_online({"driver_id": 2}, both, now=at, full_feature_names=True)
    assert found.rows == [
        {"driver_id": 2, "driver_stats__trips": trips, "driver_rates__trips_per_hour": trips}
    ]


ENTITY_SHAPES = {
    "scalar": lambda key: {"driver_id": key},
    "list of one": lambda key: {"driver_id": [key]},
    "row": lambda key: [{"driver_id": key}],
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.one_of(st.integers(-1, DRIVERS + 2), st.booleans(), st.integers(0, 3).map(np.int64)),
    shape=st.sampled_from(sorted(ENTITY_SHAPES)),
    features=st.lists(st.sampled_from(["trips", "rating"]), min_size=1, max_size=2, unique=True),
    full=st.booleans(),
    # after T0 + 10 h the newest values (T0 + 9 h) are 1 h old, and the TTL is 2 h
    after_ms=st.one_of(
        st.integers(0, 3 * HOUR_MS), st.sampled_from([-1, 0, 1]).map(HOUR_MS.__add__)
    ),
)
def test_one_entity_is_served_as_it_is_among_others(
    materialized: Path, key: Any, shape: str, features: list[str], full: bool, after_ms: int
) -> None:
    store = my.features._default.default_feature_store()
    refs = [f"driver_stats:{name}" for name in features]
    at = T0 + timedelta(hours=10, milliseconds=after_ms)
    alone = store.get_online(ENTITY_SHAPES[shape](key), refs, now=at, full_feature_names=full)
    among = store.get_online({"driver_id": [key, 1]}, refs, now=at, full_feature_names=full)
    assert alone.rows == among.rows[:1]
    framed = pd.DataFrame({"driver_id": [key, 1]})  # numpy values, as rows of a frame
    assert store.get_online(framed, refs, now=at, full_feature_names=full) == among
    assert alone.status == among.status[:1]
    assert alone.age_s == among.age_s[:1]


def test_a_change_applied_elsewhere_reaches_an_online_reader_within_refresh_s(
    tmp_path: Path,
) -> None:
    from modelyard.features import FeatureRegistry, FeatureStore
    from modelyard.features._online_sqlite import SqliteOnlineStore
    from modelyard.store import MetadataStore

    folder = tmp_path / "driver_stats"
    folder.mkdir()
    driver_rows().to_parquet(folder / "part-0.parquet")

    def store(refresh_s: float) -> FeatureStore:
        registry = FeatureRegistry(MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}"))
        online = SqliteOnlineStore(tmp_path / "online.db")
        return FeatureStore(registry, online, refresh_s=refresh_s)

    writer, reader = store(refresh_s=5.0), store(refresh_s=0.5)
    driver, stats, _ = definitions(folder)
    writer.apply([driver, stats, my.features.FeatureService("churn_v1", ["driver_stats:trips"])])
    writer.materialize(end=T0 + timedelta(hours=48))
    at = T0 + timedelta(hours=47, minutes=30)
    try:
        first = reader.get_online({"driver_id": [1]}, service="churn_v1", now=at)
        assert list(first.rows[0]) == ["driver_id", "trips"]
        wider = ["driver_stats:trips", "driver_stats:rating"]
        writer.apply([my.features.FeatureService("churn_v1", wider)])
        time.sleep(0.6)
        later = reader.get_online({"driver_id": [1]}, service="churn_v1", now=at)
        assert list(later.rows[0]) == ["driver_id", "trips", "rating"]
        assert later.rows[0]["rating"] == latest(driver_rows(), 1, at)["rating"]
    finally:
        writer.close()
        reader.close()


def test_bad_online_requests_are_refused(yard: Path) -> None:
    my.features.apply(definitions(yard))
    with pytest.raises(InvalidInput, match="needs the join keys"):
        my.features.get_online({"rider_id": [1]}, ["driver_stats:trips"])
    for bad in ([1, 2], "driver_id", 7):
        with pytest.raises(InvalidInput, match="entit"):
            my.features.get_online(bad, ["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="a join key must be"):
        my.features.get_online({"driver_id": 1.5}, ["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="one"):
        my.features.get_online({"driver_id": [1]}, ["driver_stats:trips"], service="churn_v1")
    with pytest.raises(InvalidInput, match="has no feature 'speed'"):
        my.features.get_training_frame(
            pd.DataFrame({"driver_id": [1], "event_timestamp": [T0]}), ["driver_stats:speed"]
        )
