"""REST routes of deployments, a thin layer over `Deployments` on the server's stores.

No authentication exists yet: who acts is who the caller says (`actor`), as for the
registry's alias moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from modelyard.rollout._default import PROMOTED_BY_HAND, ROLLED_BACK_BY_HAND, SPLIT_BY_HAND
from modelyard.rollout._engine import evaluate
from modelyard.rollout._status import status_of
from modelyard.rollout._store import Deployments
from modelyard.server._errors import json_response
from modelyard.serving._feedback import FeedbackStore
from modelyard.serving._log import PredictionLog

if TYPE_CHECKING:
    from modelyard.models import LoadedModel


class DeploymentIn(BaseModel):
    name: str
    strategy: str
    model: str  # churn@champion or churn/3
    candidates: list[str] = Field(default_factory=list)
    policy: dict[str, Any] | None = None
    alias: str = "champion"
    actor: str


class Change(BaseModel):
    actor: str
    reason: str = ""


class Promotion(BaseModel):
    actor: str
    reason: str = PROMOTED_BY_HAND
    variant: str | None = None


class Rollback(BaseModel):
    actor: str
    reason: str = ROLLED_BACK_BY_HAND


class Split(BaseModel):
    split: dict[str, Any]  # variant -> share in [0, 1]; checked by the store
    actor: str
    reason: str = SPLIT_BY_HAND


def deployments_router(
    deployments: Deployments,
    log: PredictionLog,
    feedback: FeedbackStore,
    replay: Callable[[str], LoadedModel] | None = None,
) -> APIRouter:
    """The routes; a deployment's status takes a live look at its traffic in `log`, and
    `replay` loads a blue-green candidate for its smoke test."""
    api = APIRouter(prefix="/api/v1/deployments", tags=["rollout"])

    @api.post("", status_code=201)
    def create(body: DeploymentIn) -> Response:
        fields = body.model_dump()
        deployment = deployments.create(fields.pop("name"), **fields)
        return json_response(deployment.to_dict(), status_code=201)

    @api.get("")
    def list_deployments(include_finished: bool = True) -> Response:
        found = deployments.all(include_finished=include_finished)
        return json_response([d.to_dict() for d in found])

    @api.get("/{name}")
    def status(name: str) -> Response:
        found = status_of(deployments, name, log=log, feedback=feedback)
        return json_response(found.to_dict())

    @api.get("/{name}/history")
    def history(name: str) -> Response:
        return json_response([e.to_dict() for e in deployments.history(name)])

    @api.post("/{name}/decide")
    def decide(name: str, body: Change) -> Response:
        decision = evaluate(
            deployments, log, feedback, name, act=True, replay=replay, actor=body.actor
        )
        return json_response(decision.to_dict())

    @api.post("/{name}/promote")
    def promote(name: str, body: Promotion) -> Response:
        promoted = deployments.promote(
            name, variant=body.variant, actor=body.actor, reason=body.reason
        )
        return json_response(promoted.to_dict())

    @api.post("/{name}/rollback")
    def rollback(name: str, body: Rollback) -> Response:
        return json_response(
            deployments.rollback(name, actor=body.actor, reason=body.reason).to_dict()
        )

    @api.post("/{name}/pause")
    def pause(name: str, body: Change) -> Response:
        return json_response(
            deployments.pause(name, actor=body.actor, reason=body.reason).to_dict()
        )

    @api.post("/{name}/resume")
    def resume(name: str, body: Change) -> Response:
        return json_response(
            deployments.resume(name, actor=body.actor, reason=body.reason).to_dict()
        )

    @api.put("/{name}/split")
    def set_split(name: str, body: Split) -> Response:
        changed = deployments.set_split(name, body.split, actor=body.actor, reason=body.reason)
        return json_response(changed.to_dict())

    @api.delete("/{name}", status_code=204)
    def delete(name: str, actor: str) -> Response:
        deployments.delete(name, actor=actor)
        return Response(status_code=204)

    return api
