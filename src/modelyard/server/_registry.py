"""REST routes of the model registry, a thin layer over a `Registry` (the server's
`SqlRegistry`); `RestRegistry` is their client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from modelyard.errors import NotFound
from modelyard.registry import (
    Lineage,
    ModelVersion,
    RegisteredModel,
    Registry,
    RegistryEvent,
    VersionComparison,
)
from modelyard.server._errors import wire_json


class ModelIn(BaseModel):
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    protected_aliases: list[str] = Field(default_factory=list)


class VersionIn(BaseModel):
    created_by: str
    run_id: str | None = None
    manifest_digest: str | None = None
    flavor: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class MetadataPatch(BaseModel):
    """Description: absent or null leaves it, "" clears it; tags are set, delete_tags removed."""

    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    delete_tags: list[str] = Field(default_factory=list)


class AliasMove(BaseModel):
    version: int
    actor: str
    reason: str | None = None


class Rollback(BaseModel):
    actor: str
    reason: str | None = None


class Review(BaseModel):
    approved: bool
    approver: str
    comment: str | None = None


class Protected(BaseModel):
    aliases: list[str]


class Status(BaseModel):
    status: str


def registry_router(registry: Registry) -> APIRouter:
    """Routes under /api/v1/models (plus version search and dataset lineage) over `registry`."""
    api = APIRouter(prefix="/api/v1/models", tags=["registry"])

    @api.get("")
    def list_models() -> Response:
        return wire_json(registry.list_models(), list[RegisteredModel])

    @api.post("", status_code=201)
    def create_model(body: ModelIn) -> Response:
        created = registry.create_model(
            body.name,
            description=body.description,
            tags=body.tags,
            protected_aliases=body.protected_aliases,
        )
        return wire_json(created, RegisteredModel, 201)

    @api.get("/{name}")
    def get_model(name: str) -> Response:
        return wire_json(registry.get_model(name), RegisteredModel)

    @api.patch("/{name}")
    def update_model(name: str, body: MetadataPatch) -> Response:
        updated = registry.update_model(
            name, description=body.description, tags=body.tags, delete_tags=body.delete_tags
        )
        return wire_json(updated, RegisteredModel)

    @api.put("/{name}/protected-aliases")
    def protect(name: str, body: Protected) -> Response:
        return wire_json(registry.set_protected_aliases(name, body.aliases), RegisteredModel)

    @api.get("/{name}/versions")
    def list_versions(name: str) -> Response:
        return wire_json(registry.list_versions(name), list[ModelVersion])

    @api.post("/{name}/versions", status_code=201)
    def create_version(name: str, body: VersionIn) -> Response:
        created = registry.create_version(
            name,
            created_by=body.created_by,
            run_id=body.run_id,
            manifest_digest=body.manifest_digest,
            flavor=body.flavor,
            description=body.description,
            tags=body.tags,
        )
        return wire_json(created, ModelVersion, 201)

    @api.get("/{name}/versions/{version}")
    def get_version(name: str, version: int) -> Response:
        return wire_json(registry.get_version(name, version), ModelVersion)

    @api.patch("/{name}/versions/{version}")
    def update_version(name: str, version: int, body: MetadataPatch) -> Response:
        updated = registry.update_version(
            name,
            version,
            description=body.description,
            tags=body.tags,
            delete_tags=body.delete_tags,
        )
        return wire_json(updated, ModelVersion)

    @api.get("/{name}/versions/{version}/manifest")
    def get_manifest(name: str, version: int) -> Response:
        manifest = registry.get_manifest(name, version)
        if manifest is None:
            raise NotFound(
                f"version {version} of {name!r} has no manifest: it was registered without "
                "log_model"
            )
        return Response(manifest.model_dump_json(), media_type="application/json")

    @api.get("/{name}/versions/{version}/lineage")
    def lineage(name: str, version: int) -> Response:
        return wire_json(registry.lineage(name, version), Lineage)

    @api.get("/{name}/versions/{version}/card")
    def card(name: str, version: int) -> Response:
        return Response(registry.card(name, version), media_type="text/markdown; charset=utf-8")

    @api.get("/{name}/compare")
    def compare(name: str, a: int, b: int) -> Response:
        return wire_json(registry.compare_versions(name, a, b), VersionComparison)

    @api.post("/{name}/versions/{version}/status")
    def set_status(name: str, version: int, body: Status) -> Response:
        return wire_json(registry.set_version_status(name, version, body.status), ModelVersion)

    @api.post("/{name}/versions/{version}/reviews", status_code=201)
    def review(name: str, version: int, body: Review) -> Response:
        event = registry.review(
            name, version, approved=body.approved, approver=body.approver, comment=body.comment
        )
        return wire_json(event, RegistryEvent, 201)

    @api.put("/{name}/aliases/{alias}")
    def set_alias(name: str, alias: str, body: AliasMove) -> Response:
        moved = registry.set_alias(name, alias, body.version, actor=body.actor, reason=body.reason)
        return wire_json(moved, ModelVersion)

    @api.delete("/{name}/aliases/{alias}", status_code=204)
    def delete_alias(name: str, alias: str, actor: str, reason: str | None = None) -> Response:
        registry.delete_alias(name, alias, actor=actor, reason=reason)
        return Response(status_code=204)

    @api.post("/{name}/aliases/{alias}/rollback")
    def rollback(name: str, alias: str, body: Rollback) -> Response:
        return wire_json(
            registry.rollback(name, alias, actor=body.actor, reason=body.reason), ModelVersion
        )

    @api.get("/{name}/aliases/{alias}/at")
    def alias_at(name: str, alias: str, time: int) -> Response:
        return wire_json({"version": registry.alias_at(name, alias, time)}, dict[str, int | None])

    @api.get("/{name}/history")
    def history(name: str) -> Response:
        return wire_json(registry.history(name), list[RegistryEvent])

    queries = APIRouter(prefix="/api/v1", tags=["registry"])

    @queries.get("/model-versions")
    def search_versions(
        filter: str | None = None,
        name: str | None = None,
        order_by: Annotated[list[str] | None, Query()] = None,
        max_results: int = 1000,
    ) -> Response:
        found = registry.search_versions(
            filter, name=name, order_by=order_by, max_results=max_results
        )
        return wire_json(found, list[ModelVersion])

    @queries.get("/datasets/{dataset:path}/versions")
    def versions_trained_on(dataset: str) -> Response:
        return wire_json(registry.versions_trained_on(dataset), list[ModelVersion])

    routes = APIRouter()
    routes.include_router(api)
    routes.include_router(queries)
    return routes
