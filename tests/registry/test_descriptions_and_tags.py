"""Descriptions and tags of models and versions change; what a version is never does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from modelyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from tests.registry.conftest import Stores


def test_model_description_and_tags_are_updated_in_place(stores: Stores) -> None:
    registry = stores.registry
    registry.create_model("churn", description="who leaves", tags={"team": "risk", "tier": "1"})
    updated = registry.update_model(
        "churn", description="customers likely to leave", tags={"tier": "2", "pii": "no"}
    )
    assert updated.description == "customers likely to leave"
    assert updated.tags == {"team": "risk", "tier": "2", "pii": "no"}
    kept = registry.update_model("churn", delete_tags=["pii"])
    assert (kept.description, kept.tags) == (
        "customers likely to leave",
        {"team": "risk", "tier": "2"},
    )
    assert registry.get_model("churn") == kept


def test_an_empty_description_clears_it_and_none_leaves_it(stores: Stores) -> None:
    registry = stores.registry
    registry.create_model("churn", description="who leaves")
    assert registry.update_model("churn", tags={"a": "1"}).description == "who leaves"
    assert registry.update_model("churn", description="").description is None


def test_version_description_and_tags_change_but_not_what_it_is(stores: Stores) -> None:
    registry = stores.registry
    run_id = stores.run()
    created = registry.create_version(
        "churn", created_by="ana", run_id=run_id, flavor="sklearn", tags={"stage": "dev"}
    )
    updated = registry.update_version(
        "churn", 1, description="retrained on May data", tags={"stage": "qa", "owner": "bo"}
    )
    assert updated.description == "retrained on May data"
    assert updated.tags == {"stage": "qa", "owner": "bo"}
    assert (updated.run_id, updated.flavor, updated.created_at, updated.created_by) == (
        created.run_id,
        created.flavor,
        created.created_at,
        created.created_by,
    )
    cleared = registry.update_version("churn", 1, description="", delete_tags=["owner"])
    assert (cleared.description, cleared.tags) == (None, {"stage": "qa"})


def test_deleting_a_missing_tag_names_the_tags_there_are(stores: Stores) -> None:
    registry = stores.registry
    registry.create_model("churn", tags={"team": "risk"})
    registry.create_version("churn", created_by="ana")
    with pytest.raises(NotFound, match=r"model 'churn' has no tag 'nope'; tags: team"):
        registry.update_model("churn", delete_tags=["nope"])
    with pytest.raises(NotFound, match=r"version 1 of 'churn' has no tag 'x'; tags: none"):
        registry.update_version("churn", 1, delete_tags=["x"])


def test_updates_are_all_or_nothing(stores: Stores) -> None:
    registry = stores.registry
    registry.create_model("churn", description="old", tags={"team": "risk"})
    with pytest.raises(NotFound):
        registry.update_model("churn", description="new", delete_tags=["nope"])
    assert registry.get_model("churn").description == "old"


def test_bad_updates_are_refused(stores: Stores) -> None:
    registry = stores.registry
    registry.create_version("churn", created_by="ana")
    with pytest.raises(NotFound, match="'nope' does not exist"):
        registry.update_model("nope", description="x")
    with pytest.raises(NotFound, match=r"versions run 1\.\.1"):
        registry.update_version("churn", 2, tags={"a": "b"})
    with pytest.raises(InvalidInput, match="both set and deleted"):
        registry.update_model("churn", tags={"a": "1"}, delete_tags=["a"])
    with pytest.raises(InvalidInput, match="tag name"):
        registry.update_version("churn", 1, tags={"bad|key": "1"})
    with pytest.raises(InvalidInput, match="NUL"):
        registry.update_model("churn", description="a\x00b")
