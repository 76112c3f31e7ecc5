"""REST routes of the prediction log and of feedback, a thin layer over a `PredictionLog`
and a `FeedbackStore`; `RestPredictionLog` and `RestFeedback` are their clients."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from modelyard.errors import InvalidInput
from modelyard.server._errors import json_response
from modelyard.serving._feedback import FeedbackStore
from modelyard.serving._log import PredictionLog, frame_records
from modelyard.serving._records import PredictionRow


class RowIn(BaseModel):
    id: str
    model: str
    version: int
    at_ms: int
    latency_ms: float
    inputs: str  # JSON text
    outputs: str
    deployment: str | None = None
    variant: str | None = None
    parent_id: str | None = None


class RowsIn(BaseModel):
    rows: list[RowIn]


class IdsIn(BaseModel):
    ids: list[str]


class LabelIn(BaseModel):
    prediction_id: Any = None
    label: Any = None


class FeedbackIn(BaseModel):
    """One label (`prediction_id`, `label`) or several (`feedback`)."""

    prediction_id: Any = None
    label: Any = None
    feedback: list[LabelIn] | None = None


def predictions_router(log: PredictionLog, feedback: FeedbackStore) -> APIRouter:
    """Routes under /api/v1/predictions and /api/v1/feedback."""
    api = APIRouter(prefix="/api/v1", tags=["predictions"])

    @api.post("/predictions", status_code=204)
    def write(body: RowsIn) -> Response:
        log.write([PredictionRow(**row.model_dump()) for row in body.rows])
        return Response(status_code=204)

    @api.get("/predictions")
    def read(
        model: str,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> Response:
        frame = log.read(model, version=version, since_ms=since_ms, until_ms=until_ms, limit=limit)
        return json_response(frame_records(frame))

    @api.post("/predictions/find")
    def find(body: IdsIn) -> Response:
        found = log.find(body.ids)
        return json_response(
            {"found": {i: {"model": m, "version": ver} for i, (m, ver) in found.items()}}
        )

    @api.get("/predictions/count")
    def count(model: str | None = None, version: int | None = None) -> Response:
        return json_response({"count": log.count(model, version)})

    @api.post("/feedback", status_code=201)
    def record(body: FeedbackIn) -> Response:
        if body.feedback is not None:
            if "prediction_id" in body.model_fields_set or "label" in body.model_fields_set:
                raise InvalidInput("send either {prediction_id, label} or {feedback: [...]}")
            items = [(item.prediction_id, item.label) for item in body.feedback]
            return json_response({"feedback": feedback.record(items)}, 201)
        if "prediction_id" not in body.model_fields_set:
            raise InvalidInput(
                'send {"prediction_id": ..., "label": ...} or {"feedback": [{...}, ...]}'
            )
        (recorded,) = feedback.record([(body.prediction_id, body.label)])
        return json_response(recorded, 201)

    @api.get("/feedback")
    def read_feedback(
        model: str,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> Response:
        frame = feedback.read(
            model, version=version, since_ms=since_ms, until_ms=until_ms, limit=limit
        )
        return json_response(frame_records(frame))

    return api
