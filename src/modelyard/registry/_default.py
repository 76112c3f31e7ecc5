"""`my.registry.*`: registry calls on the default stores or server (what `my.configure` names).

Who acts is the current OS user unless `actor=`/`approver=` says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.models import Manifest
    from modelyard.registry._backend import Registry
    from modelyard.registry._entities import (
        Lineage,
        ModelVersion,
        RegisteredModel,
        RegistryEvent,
        VersionComparison,
    )
    from modelyard.tracking import Tracker


def registry_of(tracker: Tracker) -> Registry:
    """The registry over the same stores as `tracker`, or on the same server."""
    from modelyard.errors import InvalidInput
    from modelyard.registry._rest import RestRegistry
    from modelyard.registry._sql import SqlRegistry
    from modelyard.tracking._rest import RestTracking
    from modelyard.tracking._sql import SqlTracking

    backend = tracker.backend
    if isinstance(backend, RestTracking):
        return RestRegistry(backend.base_url)
    if isinstance(backend, SqlTracking):
        return SqlRegistry(backend.metadata, backend.artifacts)
    raise InvalidInput(
        f"no registry goes with a {type(backend).__name__} tracker: use one on local stores "
        "(db_url) or on a modelyard server (tracking_uri)"
    )


def _registry() -> Registry:
    from modelyard._sdk import default_registry

    return default_registry()


def _user(given: str | None) -> str:
    from modelyard.tracking._environment import current_user

    return given or current_user()


def create_model(
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    protected_aliases: Sequence[str] = (),
) -> RegisteredModel:
    return _registry().create_model(
        name, description=description, tags=tags, protected_aliases=protected_aliases
    )


def get_model(name: str) -> RegisteredModel:
    return _registry().get_model(name)


def list_models() -> list[RegisteredModel]:
    return _registry().list_models()


def update_model(
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    delete_tags: Sequence[str] = (),
) -> RegisteredModel:
    return _registry().update_model(
        name, description=description, tags=tags, delete_tags=delete_tags
    )


def protect(name: str, aliases: Sequence[str]) -> RegisteredModel:
    """Make `aliases` protected: only an approved version may take them."""
    return _registry().set_protected_aliases(name, aliases)


def create_version(
    name: str,
    *,
    run_id: str | None = None,
    manifest_digest: str | None = None,
    flavor: str | None = None,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    created_by: str | None = None,
) -> ModelVersion:
    """Register a version without files (`my.log_model` stores files and registers)."""
    return _registry().create_version(
        name,
        created_by=_user(created_by),
        run_id=run_id,
        manifest_digest=manifest_digest,
        flavor=flavor,
        description=description,
        tags=tags,
    )


def get_version(name: str, version: int) -> ModelVersion:
    return _registry().get_version(name, version)


def list_versions(name: str) -> list[ModelVersion]:
    return _registry().list_versions(name)


def update_version(
    name: str,
    version: int,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    delete_tags: Sequence[str] = (),
) -> ModelVersion:
    return _registry().update_version(
        name, version, description=description, tags=tags, delete_tags=delete_tags
    )


def search_versions(
    filter: str | None = None,
    *,
    name: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
) -> list[ModelVersion]:
    """Versions matching `filter`, e.g. `metrics.auc > 0.9 and flavor = 'sklearn'`."""
    return _registry().search_versions(
        filter, name=name, order_by=order_by, max_results=max_results
    )


def resolve(uri: str) -> ModelVersion:
    """The version `models:/name/3` or `models:/name@alias` names now."""
    return _registry().resolve(uri)


def get_manifest(name: str, version: int) -> Manifest | None:
    return _registry().get_manifest(name, version)


def archive(name: str, version: int) -> ModelVersion:
    return _registry().set_version_status(name, version, "archived")


def restore(name: str, version: int) -> ModelVersion:
    return _registry().set_version_status(name, version, "ready")


def set_alias(
    name: str, alias: str, version: int, *, reason: str | None = None, actor: str | None = None
) -> ModelVersion:
    """Point `alias` at `version` (recorded: who, when, from, to, why)."""
    return _registry().set_alias(name, alias, version, actor=_user(actor), reason=reason)


def delete_alias(
    name: str, alias: str, *, reason: str | None = None, actor: str | None = None
) -> None:
    _registry().delete_alias(name, alias, actor=_user(actor), reason=reason)


def rollback(
    name: str, alias: str, *, reason: str | None = None, actor: str | None = None
) -> ModelVersion:
    """Move `alias` back to the version that held it before (recorded as a rollback)."""
    return _registry().rollback(name, alias, actor=_user(actor), reason=reason)


def approve(
    name: str, version: int, *, comment: str | None = None, approver: str | None = None
) -> RegistryEvent:
    return _registry().review(
        name, version, approved=True, approver=_user(approver), comment=comment
    )


def reject(
    name: str, version: int, *, comment: str | None = None, approver: str | None = None
) -> RegistryEvent:
    return _registry().review(
        name, version, approved=False, approver=_user(approver), comment=comment
    )


def history(name: str) -> list[RegistryEvent]:
    """Alias moves, rollbacks and approval decisions, oldest first."""
    return _registry().history(name)


def lineage(name: str, version: int) -> Lineage:
    """Where a version came from: its run, the datasets it used, the code commit."""
    return _registry().lineage(name, version)


def versions_trained_on(dataset: str) -> list[ModelVersion]:
    """Versions whose run used `dataset` (a dataset name or content digest)."""
    return _registry().versions_trained_on(dataset)


def compare_versions(name: str, a: int, b: int) -> VersionComparison:
    return _registry().compare_versions(name, a, b)


def card(name: str, version: int) -> str:
    """A Markdown model card from what the registry knows about the version."""
    return _registry().card(name, version)
