"""The point-in-time join on a local Dask cluster of processes gives exactly the in-process
result: every label row, in order, for two views (one with a transform) over Parquet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import InvalidInput
from modelyard.features import Entity, FeatureView, Field
from modelyard.features._distributed import distributed_training_frame
from modelyard.features._offline import training_frame

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def ratio(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(ratio=frame["a"] / (frame["b"] + 1.0))


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FeatureView]:
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("distributed")
    rows = 20_000
    stats = pd.DataFrame(
        {
            "driver_id": rng.integers(0, 500, rows),
            "event_ts": [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 40_000, rows)],
            "a": rng.normal(size=rows),
            "b": rng.integers(0, 9, rows).astype(float),
        }
    )
    stats.iloc[: rows // 2].to_parquet(folder / "part-0.parquet")
    stats.iloc[rows // 2 :].to_parquet(folder / "part-1.parquet")
    zones = pd.DataFrame(
        {
            "zone": ["n", "s", "e", "w"] * 50,
            "event_ts": [T0 + timedelta(hours=h) for h in range(200)],
            "demand": rng.uniform(size=200),
        }
    )
    driver, zone = Entity("driver", ["driver_id"]), Entity("zone", ["zone"])
    return {
        "driver_stats": FeatureView(
            "driver_stats",
            entities=[driver],
            source=str(folder),
            timestamp_field="event_ts",
            ttl=timedelta(days=3),
            features=[Field("a"), Field("ratio")],
            transform=ratio,
        ),
        "zone_demand": FeatureView(
            "zone_demand",
            entities=[zone],
            source=zones,
            timestamp_field="event_ts",
            features=[Field("demand")],
        ),
    }


def labels(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "driver_id": rng.integers(0, 520, count),  # some drivers have no rows
            "zone": rng.choice(["n", "s", "e", "w", "x"], count),
            "event_timestamp": [
                T0 + timedelta(minutes=int(m)) for m in rng.integers(-100, 42_000, count)
            ],
            "label": rng.integers(0, 2, count),
        }
    )


REFS = ["driver_stats:a", "driver_stats:ratio", "zone_demand:demand"]


def test_the_dask_join_equals_the_in_process_join(views: dict[str, FeatureView]) -> None:
    wanted = pd.concat([labels(3_000, 1), labels(50, 1)], ignore_index=True)  # duplicates
    expected = training_frame(wanted, views, REFS)
    found = distributed_training_frame(wanted, views, REFS, dask="local", partitions=5)
    pd.testing.assert_frame_equal(found, expected)
    assert found["a"].notna().sum() > 1000 and found["a"].isna().sum() > 0


def test_partition_count_is_checked(views: dict[str, FeatureView]) -> None:
    with pytest.raises(InvalidInput, match="at least 1"):
        distributed_training_frame(labels(5, 2), views, REFS, dask="local", partitions=0)
    with pytest.raises(InvalidInput, match="no columns"):
        distributed_training_frame(
            labels(5, 2).drop(columns="zone"), views, REFS, dask="local", partitions=2
        )


def test_narrowing_to_the_label_entities_changes_nothing(views: dict[str, FeatureView]) -> None:
    wanted = labels(500, 4)
    narrowed = training_frame(wanted, views, REFS, only_label_entities=True)
    pd.testing.assert_frame_equal(narrowed, training_frame(wanted, views, REFS))
