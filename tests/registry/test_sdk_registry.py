"""`my.registry.*` over versions stored by `my.log_model`, one suite run three ways: local
SQLite, local PostgreSQL, and a remote server (the registry over HTTP)."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from modelyard._sdk import default_registry
from modelyard.config import Settings
from modelyard.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
)
from modelyard.registry import ModelVersion, RestRegistry, open_registry
from modelyard.tracking._environment import current_user

from conftest import free_port


@pytest.fixture
def name() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    """Training data of its own (datasets are known by content, and the server is shared)."""
    rng = np.random.default_rng()
    frame = pd.DataFrame({"age": rng.integers(18, 90, 60), "spend": rng.normal(50, 10, 60)})
    return frame, (frame["spend"] > 50).to_numpy().astype(int)


def _log(
    sdk: ModuleType, name: str, data: tuple[pd.DataFrame, np.ndarray], c: float, auc: float
) -> ModelVersion:
    """A version of `name` trained with `C=c` in a run that scored `auc`."""
    x, y = data
    with sdk.start_run(experiment=f"exp-{name}") as run:
        run.log_param("C", c)
        run.log_metric("auc", auc)
        version: ModelVersion = sdk.log_model(
            LogisticRegression(C=c).fit(x, y), name, training_data=(x, y)
        )
    return version


@pytest.fixture
def two(sdk: ModuleType, name: str, data: tuple[pd.DataFrame, np.ndarray]) -> list[ModelVersion]:
    """Versions 1 (C=0.1, auc 0.8) and 2 (C=1.0, auc 0.9) of `name`."""
    return [_log(sdk, name, data, 0.1, 0.8), _log(sdk, name, data, 1.0, 0.9)]


def test_alias_moves_and_rollbacks_are_in_the_history(
    sdk: ModuleType, name: str, two: list[ModelVersion]
) -> None:
    registry = sdk.registry
    assert registry.set_alias(name, "champion", 1, reason="first").aliases == ("champion",)
    registry.set_alias(name, "champion", 2, reason="better auc")
    assert registry.resolve(f"models:/{name}@champion").version == 2
    assert registry.rollback(name, "champion", reason="latency").version == 1
    events = registry.history(name)
    assert [(e.kind, e.from_version, e.to_version, e.reason) for e in events] == [
        ("set", None, 1, "first"),
        ("move", 1, 2, "better auc"),
        ("rollback", 2, 1, "latency"),
    ]
    assert {e.actor for e in events} == {current_user()}
    assert default_registry().alias_at(name, "champion", events[1].at) == 2
    assert default_registry().alias_at(name, "champion", events[0].at - 1) is None
    registry.delete_alias(name, "champion", reason="retired", actor="ops")
    assert registry.history(name)[-1].kind == "delete"
    with pytest.raises(NotFound, match=r"has no alias 'champion'; aliases: none"):
        registry.resolve(f"models:/{name}@champion")
    with pytest.raises(NotFound, match="no earlier version to roll back to"):
        registry.rollback(name, "champion")


def test_protected_aliases_take_only_approved_versions(
    sdk: ModuleType, name: str, two: list[ModelVersion]
) -> None:
    registry = sdk.registry
    assert registry.protect(name, ["champion"]).protected_aliases == ("champion",)
    with pytest.raises(PermissionDenied, match="version 1 has no approval"):
        registry.set_alias(name, "champion", 1)
    rejected = registry.reject(name, 1, comment="leaks a feature", approver="lead")
    assert (rejected.kind, rejected.version, rejected.actor) == ("rejected", 1, "lead")
    with pytest.raises(PermissionDenied, match="version 1 was rejected"):
        registry.set_alias(name, "champion", 1)
    registry.approve(name, 1, comment="fixed", approver="lead")
    registry.set_alias(name, "champion", 1, reason="approved")
    assert [e.kind for e in registry.history(name)] == ["rejected", "approved", "set"]
    assert registry.get_model(name).aliases == {"champion": 1}


def test_archived_versions_take_no_alias_and_aliased_ones_stay(
    sdk: ModuleType, name: str, two: list[ModelVersion]
) -> None:
    registry = sdk.registry
    assert registry.archive(name, 2).status == "archived"
    with pytest.raises(Conflict, match="archived"):
        registry.set_alias(name, "challenger", 2)
    assert registry.restore(name, 2).status == "ready"
    registry.set_alias(name, "challenger", 2)
    with pytest.raises(Conflict, match="move them first"):
        registry.archive(name, 2)


def test_search_lineage_and_training_data(
    sdk: ModuleType, name: str, two: list[ModelVersion]
) -> None:
    registry = sdk.registry
    found = registry.search_versions("metrics.auc > 0.85 and flavor = 'sklearn'", name=name)
    assert [v.version for v in found] == [2]
    ordered = registry.search_versions(name=name, order_by=["metrics.auc desc"])
    assert [v.version for v in ordered] == [2, 1]
    assert [v.version for v in registry.search_versions(name=name, max_results=1)] == [1]
    with pytest.raises(InvalidInput, match="auc"):
        registry.search_versions("metrics.auc >", name=name)
    lineage = registry.lineage(name, 1)
    assert lineage.version == registry.get_version(name, 1)
    assert lineage.run_id == two[0].run_id and lineage.experiment_name == f"exp-{name}"
    assert [(d.name, d.role) for d in lineage.datasets] == [(f"{name}.training", "training")]
    trained = registry.versions_trained_on(f"{name}.training")
    assert [(v.name, v.version) for v in trained] == [(name, 1), (name, 2)]
    with pytest.raises(NotFound):
        registry.versions_trained_on(f"{name}.never-logged")


def test_compare_card_and_manifest(sdk: ModuleType, name: str, two: list[ModelVersion]) -> None:
    registry = sdk.registry
    comparison = registry.compare_versions(name, 1, 2)
    assert (comparison.a, comparison.b) == tuple(registry.list_versions(name))
    assert [(m.key, m.a, m.b) for m in comparison.metrics] == [("auc", 0.8, 0.9)]
    assert comparison.params == {"C": ("0.1", "1.0")}
    assert comparison.flavor == ("sklearn", "sklearn") and comparison.signature == ()
    card = registry.card(name, 1)
    assert card.startswith(f"# {name}") and "auc" in card and f"{name}.training" in card
    manifest = registry.get_manifest(name, 1)
    assert manifest is not None and manifest.run_id == two[0].run_id
    assert manifest.flavor == "sklearn" and manifest.metrics == {"auc": 0.8}
    assert [c.name for c in manifest.signature.columns or []] == ["age", "spend"]
    registry.create_version(name, description="registered by hand")
    assert registry.get_manifest(name, 3) is None
    with pytest.raises(NotFound, match=r"versions run 1\.\.3"):
        registry.get_manifest(name, 4)


def test_descriptions_and_tags_change(sdk: ModuleType, name: str, two: list[ModelVersion]) -> None:
    registry = sdk.registry
    model = registry.update_model(name, description="who leaves", tags={"team": "risk"})
    assert (model.description, model.tags) == ("who leaves", {"team": "risk"})
    model = registry.update_model(name, tags={"tier": 1}, delete_tags=["team"])
    assert (model.description, model.tags) == ("who leaves", {"tier": "1"})
    version = registry.update_version(name, 1, description="May data", tags={"stage": "qa"})
    assert (version.description, version.tags) == ("May data", {"stage": "qa"})
    assert registry.update_version(name, 1, description="").description is None
    with pytest.raises(NotFound, match="has no tag 'nope'; tags: stage"):
        registry.update_version(name, 1, delete_tags=["nope"])
    with pytest.raises(InvalidInput, match="both set and deleted"):
        registry.update_model(name, tags={"tier": "2"}, delete_tags=["tier"])


def test_errors_keep_their_type_and_message(
    sdk: ModuleType, name: str, two: list[ModelVersion]
) -> None:
    registry = sdk.registry
    with pytest.raises(NotFound, match=rf"model '{name}' has no version 9; versions run 1\.\.2"):
        registry.get_version(name, 9)
    with pytest.raises(NotFound, match=r"model 'no-such-model' does not exist"):
        registry.get_model("no-such-model")
    with pytest.raises(InvalidInput, match="not a model URI"):
        registry.resolve(f"models:/{name}")
    with pytest.raises(InvalidInput, match="invalid alias"):
        registry.set_alias(name, "3", 1)
    with pytest.raises(InvalidInput, match="archived"):
        default_registry().set_version_status(name, 1, "gone")
    with pytest.raises(NotFound, match="no stored manifest"):
        registry.create_version(name, manifest_digest="0" * 64)


def test_the_server_answers_what_its_stores_hold(
    live_server: str,
    live_server_home: Path,
    tmp_path: Path,
    name: str,
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """Every query over HTTP gives the values the server's own registry gives."""
    my.configure(home=tmp_path / "home", tracking_uri=live_server)
    try:
        for c, auc in ((0.1, 0.8), (1.0, 0.9)):
            _log(my, name, data, c, auc)
        my.registry.approve(name, 2, approver="lead")
        my.registry.set_alias(name, "champion", 2, reason="best")
        remote = default_registry()
        local = open_registry(Settings(home=live_server_home))
        try:
            for query in (
                lambda r: r.get_model(name),
                lambda r: r.list_versions(name),
                lambda r: r.resolve(f"models:/{name}@champion"),
                lambda r: r.history(name),
                lambda r: r.lineage(name, 1),
                lambda r: r.compare_versions(name, 1, 2),
                lambda r: r.card(name, 2),
                lambda r: r.get_manifest(name, 2),
                lambda r: r.search_versions("metrics.auc > 0", name=name),
                lambda r: r.versions_trained_on(f"{name}.training"),
            ):
                assert query(remote) == query(local)
        finally:
            local.close()
    finally:
        my.configure(home=tmp_path / "unused")


def test_an_unreachable_server_is_store_unavailable() -> None:
    registry = RestRegistry(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(StoreUnavailable, match="cannot reach the modelyard server"):
        registry.list_models()
    registry.close()
