"""Feature definitions in the metadata store, on SQLite and PostgreSQL: applied as versions,
diffed, breaking changes refused unless forced, bad definitions refused with nothing
stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest

from modelyard.errors import InvalidInput, NotFound
from modelyard.features import (
    Entity,
    FeatureRegistry,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    SqlSource,
)
from modelyard.store import MetadataStore

DRIVER = Entity("driver", ["driver_id"], description="a driver")


def stats(
    *fields: Field,
    ttl: timedelta | None = timedelta(days=30),
    source: object = FileSource("data/driver_stats.parquet"),
    **more: object,
) -> FeatureView:
    return FeatureView(
        "driver_stats",
        entities=[DRIVER],
        source=source,
        timestamp_field="event_ts",
        created_timestamp_field="created",
        ttl=ttl,
        features=fields or [Field("trips", "int64"), Field("rating", "float64")],
        **more,  # type: ignore[arg-type]
    )


@pytest.fixture
def registry(db_url: str) -> Iterator[FeatureRegistry]:
    metadata = MetadataStore(db_url)
    yield FeatureRegistry(metadata)
    metadata.engine.dispose()


def test_apply_stores_version_one_and_reapplying_the_same_changes_nothing(
    registry: FeatureRegistry,
) -> None:
    service = FeatureService("churn_v1", ["driver_stats:trips"])
    first = registry.apply([DRIVER, stats(), service], actor="ana")
    assert [(c.kind, c.name, c.action, c.version) for c in first] == [
        ("entity", "driver", "create", 1),
        ("view", "driver_stats", "create", 1),
        ("service", "churn_v1", "create", 1),
    ]
    again = registry.apply([DRIVER, stats(), service])
    assert {c.action for c in again} == {"unchanged"}
    stored = registry.get("view", "driver_stats")
    assert (stored.version, stored.created_by) == (1, "ana")
    assert stored.spec["ttl_s"] == 30 * 86400
    assert [f["name"] for f in stored.spec["features"]] == ["trips", "rating"]
    assert [d.name for d in registry.latest()] == ["driver", "churn_v1", "driver_stats"]


def test_a_changed_view_gets_the_next_version_and_the_diff_names_what_changed(
    registry: FeatureRegistry,
) -> None:
    registry.apply([DRIVER, stats()])
    changed = stats(ttl=timedelta(days=1), description="daily")
    [plan] = [c for c in registry.plan([changed]) if c.kind == "view"]
    assert (plan.action, plan.version) == ("update", 2)
    assert set(plan.changes) == {"ttl_s", "description"}
    assert plan.changes["ttl_s"] == (30 * 86400, 86400)
    assert registry.get("view", "driver_stats").version == 1  # plan stores nothing
    registry.apply([changed])
    assert [d.version for d in registry.history("view", "driver_stats")] == [1, 2]
    assert registry.get("view", "driver_stats", 1).spec["ttl_s"] == 30 * 86400


def test_a_type_change_is_breaking_and_refused_unless_forced(registry: FeatureRegistry) -> None:
    registry.apply([DRIVER, stats()])
    retyped = stats(Field("trips", "float64"), Field("rating", "float64"))
    with pytest.raises(InvalidInput, match="'trips' changes type from int64 to float64"):
        registry.apply([retyped])
    assert registry.get("view", "driver_stats").version == 1
    changes = registry.apply([retyped], force=True)
    assert changes[0].breaking and registry.get("view", "driver_stats").version == 2


def test_removing_a_feature_a_service_uses_is_breaking(registry: FeatureRegistry) -> None:
    registry.apply([DRIVER, stats(), FeatureService("churn_v1", ["driver_stats:rating"])])
    registry.apply([stats(Field("rating", "float64"))])  # trips is unused: fine
    with pytest.raises(InvalidInput, match=r"'rating' is removed but services \['churn_v1'\]"):
        registry.apply([stats(Field("speed", "float64"))])
    # the same apply moving the service off the feature makes it safe
    moved = FeatureService("churn_v1", ["driver_stats:speed"])
    registry.apply([stats(Field("speed", "float64")), moved])
    assert registry.get("service", "churn_v1").spec["features"] == ["driver_stats:speed"]


def test_changing_join_keys_is_breaking(registry: FeatureRegistry) -> None:
    registry.apply([DRIVER])
    with pytest.raises(InvalidInput, match="join keys change"):
        registry.apply([Entity("driver", ["driver_id", "region"])])


def test_a_changed_transform_is_a_new_version(registry: FeatureRegistry) -> None:
    def double(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(trips=frame["trips"] * 2)

    def triple(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(trips=frame["trips"] * 3)

    registry.apply([DRIVER, stats(transform=double)])
    [change] = [c for c in registry.plan([stats(transform=triple)])]
    assert change.action == "update" and set(change.changes) == {"transform"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([stats()], r"uses entities \['driver'\]: apply them too"),
        ([DRIVER, FeatureService("s", ["nope:x"])], "no feature view 'nope'"),
        ([DRIVER, stats(), FeatureService("s", ["driver_stats:x"])], "has no feature 'x'"),
        ([], "nothing to apply"),
        ([DRIVER, Entity("driver", ["other_id"])], "two different definitions"),
        (["driver"], "only Entity, FeatureView and FeatureService"),
    ],
)
def test_bad_applies_are_refused_and_store_nothing(
    registry: FeatureRegistry, items: list[object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        registry.apply(items)  # type: ignore[arg-type]
    assert registry.latest() == []


def test_unknown_definitions_are_not_found_with_what_exists(registry: FeatureRegistry) -> None:
    registry.apply([DRIVER])
    with pytest.raises(NotFound, match="known: driver"):
        registry.get("entity", "rider")
    with pytest.raises(NotFound):
        registry.get("entity", "driver", version=7)
    with pytest.raises(InvalidInput, match="kind must be one of"):
        registry.latest("table")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Entity("1driver"), "entity name '1driver' is not valid"),
        (lambda: Entity("driver", "driver_id"), "must be a list"),
        (lambda: Field("x", "float16"), "dtype 'float16'"),  # type: ignore[arg-type]
        (lambda: stats(ttl=timedelta(0)), "positive timedelta"),
        (lambda: stats(Field("driver_id")), "join keys or timestamps, not features"),
        (lambda: stats(Field("a"), Field("a")), "names features twice"),
        (lambda: FeatureService("s", ["no_colon"]), "form 'view:feature'"),
        (lambda: SqlSource("select 1", url="mysql://x"), "DuckDB"),
        (lambda: stats(source=42), "must be a Parquet path"),
    ],
)
def test_bad_definitions_fail_where_they_are_written(make: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        make()  # type: ignore[operator]
