"""Version search: the run filter language over version tags, run metrics and params,
aliases, flavor, name, status, number and creation time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from modelyard.errors import InvalidInput, NotFound
from modelyard.registry import VERSION_GRAMMAR, ModelVersion
from modelyard.tracking._search import And, Comparison, OrderKey, parse_filter, parse_order_by

if TYPE_CHECKING:
    from tests.registry.conftest import Stores

Found = list[tuple[str, int]]


@pytest.fixture
def populated(stores: Stores) -> Stores:
    """churn 1 (auc .80, l2, dev), churn 2 (auc .93, l1, prod, champion),
    churn 3 (no run, xgboost, archived), fraud 1 (auc .95, xgboost, champion + shadow)."""
    registry = stores.registry
    run = stores.run(params={"penalty": "l2"}, metrics={"auc": 0.80})
    registry.create_version(
        "churn", created_by="ana", run_id=run, flavor="sklearn", tags={"stage": "dev"}
    )
    run = stores.run(params={"penalty": "l1"}, metrics={"auc": 0.93})
    registry.create_version(
        "churn", created_by="bo", run_id=run, flavor="sklearn", tags={"stage": "prod"}
    )
    registry.create_version("churn", created_by="ana", flavor="xgboost")
    registry.set_version_status("churn", 3, "archived")
    run = stores.run(params={"depth": "6"}, metrics={"auc": 0.95, "recall": float("nan")})
    registry.create_version("fraud", created_by="ana", run_id=run, flavor="xgboost")
    registry.set_alias("churn", "champion", 2, actor="ana")
    registry.set_alias("fraud", "champion", 1, actor="ana")
    registry.set_alias("fraud", "shadow", 1, actor="ana")
    return stores


def keys(versions: list[ModelVersion]) -> Found:
    return [(v.name, v.version) for v in versions]


def test_version_filters_name_attributes_bare_and_keep_the_run_language() -> None:
    parsed = parse_filter(
        "version >= 3.0 and attributes.alias = 'champion' and model like 'ch%' "
        "and metrics.auc > .9 and created_at > '2024-05-01'",
        VERSION_GRAMMAR,
    )
    assert parsed == And(
        (
            Comparison("attribute", "version", ">=", 3),
            Comparison("attribute", "alias", "=", "champion"),
            Comparison("attribute", "name", "like", "ch%"),
            Comparison("metric", "auc", ">", 0.9),
            Comparison("attribute", "created_at", ">", 1_714_521_600_000),
        )
    )
    assert parse_order_by(["version desc", "tags.stage"], VERSION_GRAMMAR) == (
        OrderKey("attribute", "version", True),
        OrderKey("tag", "stage", False),
    )
    with pytest.raises(InvalidInput, match="'version' needs an entity prefix"):
        parse_filter("version > 3")  # runs keep their prefixed attributes


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ("metrics.auc > 0.9", [("churn", 2), ("fraud", 1)]),
        ("metrics.auc > 0.9 and flavor = 'sklearn'", [("churn", 2)]),
        ("metrics.recall is not null", []),  # NaN never matches
        ("metrics.auc is null", [("churn", 3)]),
        ("params.penalty = 'l1' or params.depth = '6'", [("churn", 2), ("fraud", 1)]),
        ("tags.stage = 'prod'", [("churn", 2)]),
        ("tags.stage is null", [("churn", 3), ("fraud", 1)]),
        ("alias = 'champion'", [("churn", 2), ("fraud", 1)]),
        ("alias = 'shadow'", [("fraud", 1)]),
        ("alias != 'shadow'", [("churn", 1), ("churn", 2), ("churn", 3)]),
        ("alias in ('shadow', 'nope')", [("fraud", 1)]),
        ("alias like 'cham%' and name = 'churn'", [("churn", 2)]),
        ("alias is null", [("churn", 1), ("churn", 3)]),
        ("flavor = 'xgboost'", [("churn", 3), ("fraud", 1)]),
        ("name like 'ch%' and version > 1", [("churn", 2), ("churn", 3)]),
        ("model = 'fraud'", [("fraud", 1)]),
        ("status = 'archived'", [("churn", 3)]),
        ("attributes.status = 'ready' and created_by = 'bo'", [("churn", 2)]),
        ("version in (1, 3) and run_id is null", [("churn", 3)]),
        ("version < 3000000000 and version > -9223372036854775808", None),
        ("created_at > '2000-01-01' and created_at < 4102444800000", None),
    ],
)
def test_filters_select_versions_across_models(
    populated: Stores, filter: str, expected: Found | None
) -> None:
    everything = [("churn", 1), ("churn", 2), ("churn", 3), ("fraud", 1)]
    wanted = everything if expected is None else expected
    assert keys(populated.registry.search_versions(filter)) == wanted


def test_search_within_one_model_and_in_a_chosen_order(populated: Stores) -> None:
    registry = populated.registry
    assert [v.version for v in registry.search_versions(name="churn")] == [1, 2, 3]
    by_auc = registry.search_versions("metrics.auc > 0", order_by=["metrics.auc desc"])
    assert keys(by_auc) == [("fraud", 1), ("churn", 2), ("churn", 1)]
    newest = registry.search_versions(name="churn", order_by=["version desc"], max_results=2)
    assert keys(newest) == [("churn", 3), ("churn", 2)]
    assert keys(registry.search_versions(order_by=["tags.stage"])) == [
        ("churn", 1),
        ("churn", 2),
        ("churn", 3),
        ("fraud", 1),
    ]
    found = registry.search_versions("alias = 'champion'", name="fraud")[0]
    assert (found.aliases, found.flavor) == (("champion", "shadow"), "xgboost")


def test_a_bad_filter_is_refused_with_its_position(populated: Stores) -> None:
    registry = populated.registry
    with pytest.raises(InvalidInput, match=r"unknown attribute 'run_name' at position 0") as err:
        registry.search_versions("run_name = 'x'")
    assert "attributes are name (or model), version, status, alias" in str(err.value)
    assert "metrics, params and tags need their prefix" in str(err.value)
    with pytest.raises(InvalidInput, match=r"position 16") as err:
        registry.search_versions("metrics.auc > 1 metrics.f1 < 2")
    assert str(err.value).splitlines()[-1] == "  " + " " * 16 + "^"
    with pytest.raises(InvalidInput, match="version is an integer, not 'x'"):
        registry.search_versions("version = 'x'")
    with pytest.raises(InvalidInput, match="outside the 64-bit integer range"):
        registry.search_versions("version < 9223372036854775808")
    with pytest.raises(InvalidInput, match="status is one of ready, archived"):
        registry.search_versions("status = 'gone'")
    with pytest.raises(InvalidInput, match="cannot be ordered by alias"):
        registry.search_versions(order_by=["alias"])
    with pytest.raises(InvalidInput, match="max_results"):
        registry.search_versions(max_results=0)
    with pytest.raises(NotFound, match="'nope' does not exist"):
        registry.search_versions(name="nope")
