"""The model registry: versions, aliases with their history, approvals, rollback, and the
queries across them: lineage, search, comparison and model cards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.registry._backend import Registry
from modelyard.registry._card import render_card
from modelyard.registry._default import (
    approve,
    archive,
    card,
    compare_versions,
    create_model,
    create_version,
    delete_alias,
    get_manifest,
    get_model,
    get_version,
    history,
    lineage,
    list_models,
    list_versions,
    protect,
    reject,
    resolve,
    restore,
    rollback,
    search_versions,
    set_alias,
    update_model,
    update_version,
    versions_trained_on,
)
from modelyard.registry._entities import (
    Lineage,
    MetricDifference,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    VersionComparison,
)
from modelyard.registry._rest import RestRegistry
from modelyard.registry._search import VERSION_GRAMMAR
from modelyard.registry._sql import SqlRegistry, check_alias, parse_model_uri

if TYPE_CHECKING:
    from modelyard.config import Settings


def open_registry(settings: Settings) -> Registry:
    """The registry on the stores `settings` name, or on the server at `tracking_uri`."""
    if settings.tracking_uri:
        return RestRegistry(settings.tracking_uri)
    from modelyard.store import open_stores

    return SqlRegistry(*open_stores(settings))


__all__ = [
    "VERSION_GRAMMAR",
    "Lineage",
    "MetricDifference",
    "ModelVersion",
    "RegisteredModel",
    "Registry",
    "RegistryEvent",
    "RestRegistry",
    "SqlRegistry",
    "VersionComparison",
    "approve",
    "archive",
    "card",
    "check_alias",
    "compare_versions",
    "create_model",
    "create_version",
    "delete_alias",
    "get_manifest",
    "get_model",
    "get_version",
    "history",
    "lineage",
    "list_models",
    "list_versions",
    "open_registry",
    "parse_model_uri",
    "protect",
    "reject",
    "render_card",
    "resolve",
    "restore",
    "rollback",
    "search_versions",
    "set_alias",
    "update_model",
    "update_version",
    "versions_trained_on",
]
