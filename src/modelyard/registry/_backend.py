"""The one protocol both registries (local stores, remote server) implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from modelyard.models import Manifest
from modelyard.registry._entities import (
    Lineage,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    VersionComparison,
)


class Registry(Protocol):
    # models
    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        protected_aliases: Sequence[str] = (),
    ) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(self) -> list[RegisteredModel]: ...
    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> RegisteredModel: ...
    def set_protected_aliases(self, name: str, aliases: Sequence[str]) -> RegisteredModel: ...

    # versions
    def create_version(
        self,
        name: str,
        *,
        created_by: str,
        run_id: str | None = None,
        manifest_digest: str | None = None,
        flavor: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        delete_tags: Sequence[str] = (),
    ) -> ModelVersion: ...
    def list_versions(self, name: str) -> list[ModelVersion]: ...
    def resolve(self, uri: str) -> ModelVersion: ...
    def set_version_status(self, name: str, version: int, status: str) -> ModelVersion: ...
    def get_manifest(self, name: str, version: int) -> Manifest | None: ...

    # queries
    def lineage(self, name: str, version: int) -> Lineage: ...
    def versions_trained_on(self, dataset: str) -> list[ModelVersion]: ...
    def search_versions(
        self,
        filter: str | None = None,
        *,
        name: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[ModelVersion]: ...
    def compare_versions(self, name: str, a: int, b: int) -> VersionComparison: ...
    def card(self, name: str, version: int) -> str: ...

    # aliases
    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str | None = None
    ) -> ModelVersion: ...
    def delete_alias(
        self, name: str, alias: str, *, actor: str, reason: str | None = None
    ) -> None: ...
    def rollback(
        self, name: str, alias: str, *, actor: str, reason: str | None = None
    ) -> ModelVersion: ...
    def alias_at(self, name: str, alias: str, at: int) -> int | None: ...

    # approvals
    def review(
        self, name: str, version: int, *, approved: bool, approver: str, comment: str | None = None
    ) -> RegistryEvent: ...
    def history(self, name: str) -> list[RegistryEvent]: ...

    def close(self) -> None: ...
