"""The registry: numbering, aliases and their history, approvals, rollback."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from modelyard.registry import SqlRegistry, parse_model_uri
from modelyard.store import ArtifactStore, MetadataStore

from _workers import register_versions


@pytest.fixture
def registry(db_url: str, tmp_path: Path) -> Iterator[SqlRegistry]:
    reg = SqlRegistry(MetadataStore(db_url), ArtifactStore(str(tmp_path / "artifacts")))
    yield reg
    reg.metadata.close()


def _versions(registry: SqlRegistry, name: str, n: int) -> list[int]:
    return [registry.create_version(name, created_by="ana").version for _ in range(n)]


def test_versions_are_numbered_from_one_without_gaps(registry: SqlRegistry) -> None:
    assert _versions(registry, "churn", 3) == [1, 2, 3]
    assert [v.version for v in registry.list_versions("churn")] == [1, 2, 3]
    assert registry.get_model("churn").latest_version == 3
    assert registry.get_version("churn", 2).uri == "models:/churn/2"
    with pytest.raises(NotFound, match=r"versions run 1\.\.3"):
        registry.get_version("churn", 4)


def test_models_are_created_once_with_their_details(registry: SqlRegistry) -> None:
    created = registry.create_model("churn", description="who leaves", tags={"team": "risk"})
    assert (created.description, created.tags, created.latest_version) == (
        "who leaves",
        {"team": "risk"},
        0,
    )
    with pytest.raises(AlreadyExists):
        registry.create_model("churn")
    assert [m.name for m in registry.list_models()] == ["churn"]
    with pytest.raises(NotFound, match="'nope'"):
        registry.get_model("nope")


def test_aliases_move_and_every_move_is_recorded(registry: SqlRegistry) -> None:
    _versions(registry, "churn", 3)
    registry.set_alias("churn", "champion", 1, actor="ana", reason="first")
    registry.set_alias("churn", "challenger", 2, actor="ana")
    registry.set_alias("churn", "champion", 2, actor="bo", reason="better auc")
    assert registry.get_model("churn").aliases == {"champion": 2, "challenger": 2}
    assert registry.get_version("churn", 2).aliases == ("challenger", "champion")
    assert registry.resolve("models:/churn@champion").version == 2
    moves = [
        (e.kind, e.alias, e.from_version, e.to_version, e.actor, e.reason)
        for e in registry.history("churn")
    ]
    assert moves == [
        ("set", "champion", None, 1, "ana", "first"),
        ("set", "challenger", None, 2, "ana", None),
        ("move", "champion", 1, 2, "bo", "better auc"),
    ]
    registry.delete_alias("churn", "challenger", actor="bo", reason="done")
    assert registry.history("churn")[-1].kind == "delete"
    with pytest.raises(NotFound, match="aliases: champion"):
        registry.resolve("models:/churn@challenger")


def test_rollback_moves_the_alias_back_and_says_so(registry: SqlRegistry) -> None:
    _versions(registry, "churn", 3)
    for version in (1, 2, 3):
        registry.set_alias("churn", "champion", version, actor="ana")
    assert registry.rollback("churn", "champion", actor="ops", reason="bad latency").version == 2
    assert registry.rollback("churn", "champion", actor="ops").version == 1
    last = registry.history("churn")[-1]
    assert (last.kind, last.from_version, last.to_version, last.actor) == ("rollback", 2, 1, "ops")
    with pytest.raises(NotFound, match="no earlier version"):
        registry.rollback("churn", "champion", actor="ops")


def test_what_was_serving_at_a_time_has_an_answer(registry: SqlRegistry) -> None:
    _versions(registry, "churn", 2)
    before = int(time.time() * 1000) - 1
    registry.set_alias("churn", "champion", 1, actor="ana")
    time.sleep(0.01)
    middle = int(time.time() * 1000)
    time.sleep(0.01)
    registry.set_alias("churn", "champion", 2, actor="ana")
    assert registry.alias_at("churn", "champion", before) is None
    assert registry.alias_at("churn", "champion", middle) == 1
    assert registry.alias_at("churn", "champion", int(time.time() * 1000)) == 2


def test_protected_aliases_need_an_approved_version(registry: SqlRegistry) -> None:
    _versions(registry, "churn", 2)
    registry.set_protected_aliases("churn", ["champion"])
    with pytest.raises(PermissionDenied, match="has no approval"):
        registry.set_alias("churn", "champion", 1, actor="ana")
    registry.review("churn", 1, approved=False, approver="lead", comment="calibration off")
    with pytest.raises(PermissionDenied, match="was rejected"):
        registry.set_alias("churn", "champion", 1, actor="ana")
    registry.review("churn", 1, approved=True, approver="lead", comment="fixed")
    registry.set_alias("churn", "champion", 1, actor="ana")
    registry.set_alias("churn", "staging", 2, actor="ana")  # not protected
    kinds = [e.kind for e in registry.history("churn")]
    assert kinds == ["rejected", "approved", "set", "set"]


def test_a_version_holding_an_alias_cannot_be_archived(registry: SqlRegistry) -> None:
    _versions(registry, "churn", 2)
    registry.set_alias("churn", "champion", 1, actor="ana")
    with pytest.raises(Conflict, match="champion"):
        registry.set_version_status("churn", 1, "archived")
    assert registry.set_version_status("churn", 2, "archived").status == "archived"
    with pytest.raises(Conflict, match="archived"):
        registry.set_alias("churn", "challenger", 2, actor="ana")


def test_bad_inputs_are_refused_clearly(registry: SqlRegistry) -> None:
    _versions(registry, "churn", 1)
    with pytest.raises(InvalidInput, match="alias"):
        registry.set_alias("churn", "3", 1, actor="ana")
    with pytest.raises(NotFound, match="does not exist"):
        registry.create_version("churn", created_by="ana", run_id="f" * 32)
    assert registry.get_model("churn").latest_version == 1  # the failed call used no number
    with pytest.raises(InvalidInput, match="model URI"):
        parse_model_uri("runs:/x")
    assert parse_model_uri("models:/churn@champion") == ("churn", None, "champion")
    assert parse_model_uri("models:/churn/7") == ("churn", 7, None)


@pytest.mark.slow
def test_eight_processes_registering_get_exactly_one_to_n(db_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        results = pool.starmap(register_versions, [(db_url, 25)] * 8)
    numbers = sorted(n for batch in results for n in batch)
    assert numbers == list(range(1, 201))
    registry = SqlRegistry(MetadataStore(db_url), ArtifactStore("memory://eight"))
    try:
        assert [v.version for v in registry.list_versions("shared")] == list(range(1, 201))
    finally:
        registry.metadata.close()
