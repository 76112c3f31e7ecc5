"""REST routes of the feature store, a thin layer over `FeatureStore` on the server's stores.

Definitions travel as their stored specs (what `GET /definitions` returns), so a view with a
Python transform or an in-memory source cannot be applied or joined over HTTP: apply it from
Python or the CLI.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from modelyard.errors import InvalidInput
from modelyard.features._definitions import Entity, FeatureService
from modelyard.features._ingest import DeadLetters
from modelyard.features._registry import Definable
from modelyard.features._store import FeatureStore, view_from_spec
from modelyard.monitoring._feature_skew import feature_skew
from modelyard.registry import Registry
from modelyard.server._errors import json_response
from modelyard.serving._log import PredictionLog


class DefinitionIn(BaseModel):
    kind: Literal["entity", "view", "service"]
    spec: dict[str, Any]


class ApplyIn(BaseModel):
    definitions: list[DefinitionIn]
    force: bool = False
    dry_run: bool = False
    actor: str


class FeaturesIn(BaseModel):
    features: list[str] | None = None
    service: str | None = None
    full_feature_names: bool = False


class OnlineIn(FeaturesIn):
    entities: list[dict[str, Any]]


class TrainingFrameIn(FeaturesIn):
    labels: list[dict[str, Any]]
    timestamp_column: str = "event_timestamp"


class PushIn(BaseModel):
    rows: list[dict[str, Any]]


class MaterializeIn(BaseModel):
    views: list[str] | None = None
    start: str | None = None
    end: str | None = None
    incremental: bool = False


def features_router(
    store: FeatureStore, log: PredictionLog | None = None, registry: Registry | None = None
) -> APIRouter:
    """The routes; the skew check reads served predictions from `log` and the model's
    feature binding from `registry`."""
    api = APIRouter(prefix="/api/v1/features", tags=["features"])

    @api.post("/apply")
    def apply(body: ApplyIn) -> Response:
        items = definitions_from_specs(body.definitions, store.entities())
        if body.dry_run:
            changes = store.plan(items)
        else:
            changes = store.apply(items, force=body.force, actor=body.actor)
        return json_response([c.to_dict() for c in changes])

    @api.get("/definitions")
    def list_definitions(kind: str | None = None) -> Response:
        return json_response([d.to_dict() for d in store.registry.latest(kind)])  # type: ignore[arg-type]

    @api.get("/definitions/{kind}/{name}")
    def get_definition(kind: str, name: str, version: int | None = None) -> Response:
        return json_response(store.registry.get(kind, name, version).to_dict())  # type: ignore[arg-type]

    @api.get("/definitions/{kind}/{name}/history")
    def history(kind: str, name: str) -> Response:
        found = store.registry.history(kind, name)  # type: ignore[arg-type]
        return json_response([d.to_dict() for d in found])

    @api.post("/online")
    def online(body: OnlineIn) -> Response:
        found = store.get_online(
            body.entities,
            body.features,
            service=body.service,
            full_feature_names=body.full_feature_names,
        )
        return json_response(found.to_dict())

    @api.post("/training-frame")
    def training_frame(body: TrainingFrameIn) -> Response:
        import pandas as pd

        labels = pd.DataFrame(body.labels)
        column = body.timestamp_column
        if column in labels.columns:
            labels[column] = pd.to_datetime(labels[column], format="ISO8601")
        frame = store.training_frame(
            labels,
            body.features,
            service=body.service,
            timestamp_column=column,
            full_feature_names=body.full_feature_names,
        )
        return Response(
            frame.to_json(orient="records", date_format="iso", date_unit="us"),
            media_type="application/json",
        )

    @api.post("/push/{view}")
    def push(view: str, body: PushIn) -> Response:
        import pandas as pd

        frame = pd.DataFrame(body.rows)
        return json_response({"written": store.push(view, frame), "rows": len(frame)})

    @api.post("/materialize")
    def materialize(body: MaterializeIn) -> Response:
        written = store.materialize(
            body.views, start=body.start, end=body.end, incremental=body.incremental
        )
        marks = {name: store.online.watermark(name) for name in written}
        return json_response({"written": written, "watermarks": marks})

    @api.get("/skew/{model}/{version}")
    def skew(
        model: str,
        version: int,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 10_000,
    ) -> Response:
        if log is None or registry is None:
            raise InvalidInput("this server has no prediction log to check for skew")
        manifest = registry.get_manifest(model, version)
        report = feature_skew(
            log,
            store,
            model,
            version,
            manifest.features if manifest is not None else None,
            since_ms=since_ms,
            until_ms=until_ms,
            limit=limit,
        )
        return json_response(report.to_dict())

    @api.get("/dead-letters")
    def dead_letters(view: str | None = None, limit: int = 100) -> Response:
        found = DeadLetters(store.registry.metadata).list(view, limit=limit)
        return json_response([d.to_dict() for d in found])

    return api


def definitions_from_specs(items: list[DefinitionIn], stored: dict[str, Entity]) -> list[Definable]:
    """Definitions sent as stored specs (views need no Python code); a view's entities are
    among them or `stored`."""
    entities = {
        d.spec["name"]: Entity(
            d.spec["name"],
            d.spec.get("join_keys"),
            description=d.spec.get("description", ""),
            tags=d.spec.get("tags"),
        )
        for d in items
        if d.kind == "entity"
    }
    made: list[Definable] = list(entities.values())
    for d in items:
        try:
            if d.kind == "view":
                made.append(view_from_spec(_view_spec(d.spec), stored | entities))
            elif d.kind == "service":
                made.append(
                    FeatureService(
                        d.spec["name"],
                        d.spec["features"],
                        description=d.spec.get("description", ""),
                        owner=d.spec.get("owner", ""),
                        tags=d.spec.get("tags"),
                    )
                )
        except KeyError as exc:
            raise InvalidInput(f"a {d.kind} spec lacks the field {exc}") from None
    return made


def _view_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A view spec with the optional fields filled in."""
    defaults: dict[str, Any] = {
        "created_timestamp_field": None,
        "ttl_s": None,
        "transform": None,
        "online": True,
        "description": "",
        "owner": "",
        "tags": {},
    }
    features = [
        {"name": f, "dtype": "float64", "description": ""}
        if isinstance(f, str)
        else {"dtype": "float64", "description": "", **f}
        for f in spec.get("features", [])
    ]
    return {**defaults, **spec, "features": features}
