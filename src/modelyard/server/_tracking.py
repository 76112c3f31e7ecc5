"""REST routes of the tracking API, a thin layer over a `TrackingBackend`."""

from __future__ import annotations

import tempfile
from typing import Annotated, Any, BinaryIO, cast

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from modelyard.errors import IntegrityError
from modelyard.server._errors import wire_json
from modelyard.tracking import (
    Artifact,
    DatasetInput,
    Experiment,
    LogBatch,
    Metric,
    Run,
    RunPage,
    RunQuery,
    RunSpec,
    RunStatus,
)
from modelyard.tracking._entities import View
from modelyard.tracking._sql import SqlTracking

_SPOOL_BYTES = 8 << 20


class ExperimentIn(BaseModel):
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class RunUpdate(BaseModel):
    name: str | None = None
    note: str | None = None


class RunFinish(BaseModel):
    status: RunStatus
    end_time: int | None = None


def tracking_router(backend: SqlTracking) -> APIRouter:
    """Routes under /api/v1 serving `backend` (the local stores of the server)."""
    api = APIRouter(prefix="/api/v1", tags=["tracking"])

    @api.get("/info")
    def info() -> Response:
        return wire_json(backend.info(), dict[str, Any])

    @api.get("/experiments")
    def list_experiments(view: View = "active") -> Response:
        return wire_json(backend.list_experiments(view), list[Experiment])

    @api.post("/experiments", status_code=201)
    def create_experiment(body: ExperimentIn) -> Response:
        created = backend.create_experiment(body.name, description=body.description, tags=body.tags)
        return wire_json(created, Experiment, 201)

    @api.get("/experiments/{ref}")
    def get_experiment(ref: str, create: bool = False) -> Response:
        return wire_json(backend.get_experiment(ref, create=create), Experiment)

    @api.delete("/experiments/{experiment_id}", status_code=204)
    def delete_experiment(experiment_id: int) -> Response:
        backend.set_experiment_deleted(experiment_id, True)
        return Response(status_code=204)

    @api.post("/experiments/{experiment_id}/restore", status_code=204)
    def restore_experiment(experiment_id: int) -> Response:
        backend.set_experiment_deleted(experiment_id, False)
        return Response(status_code=204)

    @api.post("/runs", status_code=201)
    def create_run(spec: RunSpec) -> Response:
        return wire_json(backend.create_run(spec), Run, 201)

    @api.post("/runs/search")
    def search_runs(query: RunQuery) -> Response:
        return wire_json(backend.search_runs(query), RunPage)

    @api.get("/runs/{run_id}")
    def get_run(run_id: str) -> Response:
        return wire_json(backend.get_run(run_id), Run)

    @api.patch("/runs/{run_id}", status_code=204)
    def update_run(run_id: str, body: RunUpdate) -> Response:
        backend.update_run(run_id, name=body.name, note=body.note)
        return Response(status_code=204)

    @api.post("/runs/{run_id}/finish", status_code=204)
    def finish_run(run_id: str, body: RunFinish) -> Response:
        backend.finish_run(run_id, body.status, body.end_time)
        return Response(status_code=204)

    @api.delete("/runs/{run_id}", status_code=204)
    def delete_run(run_id: str) -> Response:
        backend.set_run_deleted(run_id, True)
        return Response(status_code=204)

    @api.post("/runs/{run_id}/restore", status_code=204)
    def restore_run(run_id: str) -> Response:
        backend.set_run_deleted(run_id, False)
        return Response(status_code=204)

    @api.post("/runs/{run_id}/log-batch", status_code=204)
    def log_batch(run_id: str, body: LogBatch) -> Response:
        backend.log_batch(run_id, params=body.params, metrics=body.metrics, tags=body.tags)
        return Response(status_code=204)

    @api.delete("/runs/{run_id}/tags/{key:path}", status_code=204)
    def delete_tag(run_id: str, key: str) -> Response:
        backend.delete_tag(run_id, key)
        return Response(status_code=204)

    @api.get("/runs/{run_id}/metric-history")
    def metric_history(run_id: str, key: Annotated[str, Query(min_length=1)]) -> Response:
        return wire_json(backend.get_metric_history(run_id, key), list[Metric])

    @api.post("/runs/{run_id}/datasets", status_code=204)
    def log_dataset(run_id: str, dataset: Annotated[DatasetInput, Body()]) -> Response:
        backend.log_dataset(run_id, dataset)
        return Response(status_code=204)

    @api.get("/runs/{run_id}/artifacts")
    def list_artifacts(run_id: str) -> Response:
        return wire_json(backend.list_artifacts(run_id), list[Artifact])

    @api.put("/runs/{run_id}/artifacts/{path:path}", status_code=201)
    async def upload_artifact(run_id: str, path: str, request: Request) -> Response:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            stored = await run_in_threadpool(
                backend.log_artifact, run_id, path, cast(BinaryIO, spool)
            )
        return wire_json(stored, Artifact, 201)

    @api.get("/runs/{run_id}/artifacts/{path:path}")
    def download_artifact(run_id: str, path: str) -> Response:
        artifact = backend.get_artifact(run_id, path)
        if backend.artifacts.size(artifact.digest) != artifact.size:
            raise IntegrityError(
                f"artifact {path!r} of run {run_id}: blob {artifact.digest} is corrupt "
                f"(its size differs from the {artifact.size} bytes recorded)"
            )
        chunks = backend.artifacts.iter_chunks(artifact.digest)
        return StreamingResponse(
            chunks,
            media_type="application/octet-stream",
            headers={"X-Modelyard-Digest": artifact.digest, "Content-Length": str(artifact.size)},
        )

    return api
