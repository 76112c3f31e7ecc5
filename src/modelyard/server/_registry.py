"""REST routes of the model registry, a thin layer over `SqlRegistry`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from modelyard.registry import ModelVersion, RegisteredModel, RegistryEvent, SqlRegistry
from modelyard.tracking._wire import dump


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


def _json(value: Any, tp: Any, status_code: int = 200) -> Response:
    return Response(dump(value, tp), status_code=status_code, media_type="application/json")


def registry_router(registry: SqlRegistry) -> APIRouter:
    """Routes under /api/v1/models serving `registry`."""
    api = APIRouter(prefix="/api/v1/models", tags=["registry"])

    @api.get("")
    def list_models() -> Response:
        return _json(registry.list_models(), list[RegisteredModel])

    @api.post("", status_code=201)
    def create_model(body: ModelIn) -> Response:
        created = registry.create_model(
            body.name,
            description=body.description,
            tags=body.tags,
            protected_aliases=body.protected_aliases,
        )
        return _json(created, RegisteredModel, 201)

    @api.get("/{name}")
    def get_model(name: str) -> Response:
        return _json(registry.get_model(name), RegisteredModel)

    @api.put("/{name}/protected-aliases")
    def protect(name: str, body: Protected) -> Response:
        return _json(registry.set_protected_aliases(name, body.aliases), RegisteredModel)

    @api.get("/{name}/versions")
    def list_versions(name: str) -> Response:
        return _json(registry.list_versions(name), list[ModelVersion])

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
        return _json(created, ModelVersion, 201)

    @api.get("/{name}/versions/{version}")
    def get_version(name: str, version: int) -> Response:
        return _json(registry.get_version(name, version), ModelVersion)

    @api.post("/{name}/versions/{version}/status")
    def set_status(name: str, version: int, body: Status) -> Response:
        return _json(registry.set_version_status(name, version, body.status), ModelVersion)

    @api.post("/{name}/versions/{version}/reviews", status_code=201)
    def review(name: str, version: int, body: Review) -> Response:
        event = registry.review(
            name, version, approved=body.approved, approver=body.approver, comment=body.comment
        )
        return _json(event, RegistryEvent, 201)

    @api.put("/{name}/aliases/{alias}")
    def set_alias(name: str, alias: str, body: AliasMove) -> Response:
        moved = registry.set_alias(name, alias, body.version, actor=body.actor, reason=body.reason)
        return _json(moved, ModelVersion)

    @api.delete("/{name}/aliases/{alias}", status_code=204)
    def delete_alias(name: str, alias: str, actor: str, reason: str | None = None) -> Response:
        registry.delete_alias(name, alias, actor=actor, reason=reason)
        return Response(status_code=204)

    @api.post("/{name}/aliases/{alias}/rollback")
    def rollback(name: str, alias: str, body: Rollback) -> Response:
        return _json(
            registry.rollback(name, alias, actor=body.actor, reason=body.reason), ModelVersion
        )

    @api.get("/{name}/aliases/{alias}/at")
    def alias_at(name: str, alias: str, time: int) -> Response:
        return _json({"version": registry.alias_at(name, alias, time)}, dict[str, int | None])

    @api.get("/{name}/history")
    def history(name: str) -> Response:
        return _json(registry.history(name), list[RegistryEvent])

    return api
