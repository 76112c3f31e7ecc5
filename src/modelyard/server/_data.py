"""REST routes of dataset versions, validation and lineage, a thin layer over
`DatasetVersions` on the server's metadata database."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from modelyard.data._lineage import dataset_lineage, feature_binding, model_lineage
from modelyard.data._validate import validate
from modelyard.data._versions import DatasetVersions, compare_versions
from modelyard.registry import Registry
from modelyard.server._errors import json_response
from modelyard.store import MetadataStore


class ValidateIn(BaseModel):
    rows: list[dict[str, Any]]
    against: str  # a stored dataset version: "name" (latest) or "name@3"


def data_router(metadata: MetadataStore, registry: Registry | None = None) -> APIRouter:
    """The routes under /api/v1/data; a model's lineage shows the feature service it reads
    from its manifest in `registry`."""
    api = APIRouter(prefix="/api/v1/data", tags=["data"])
    versions = DatasetVersions(metadata)

    @api.get("/datasets")
    def list_datasets() -> Response:
        """Each dataset's latest version (without profiles)."""
        return json_response([v.to_dict(profile=False) for v in versions.all()])

    @api.post("/validate")
    def validate_rows(body: ValidateIn) -> Response:
        import pandas as pd

        report = validate(pd.DataFrame(body.rows), versions.resolve(body.against))
        return json_response(report.to_dict())

    @api.get("/datasets/{name}")
    def dataset_versions(name: str) -> Response:
        """Every version of `name`, oldest first (without profiles)."""
        versions.get(name)  # NotFound naming the known datasets
        return json_response([v.to_dict(profile=False) for v in versions.all(name)])

    @api.get("/datasets/{name}/compare")
    def compare(name: str, a: int, b: int) -> Response:
        return json_response(
            compare_versions(versions.get(name, a), versions.get(name, b)).to_dict()
        )

    @api.get("/datasets/{name}/lineage")
    def lineage_of_dataset(name: str, version: int | None = None) -> Response:
        return json_response(dataset_lineage(metadata, name, version).to_dict())

    @api.get("/datasets/{name}/{version}")
    def dataset_version(name: str, version: int) -> Response:
        return json_response(versions.get(name, version).to_dict())

    @api.get("/lineage/{model}/{version}")
    def lineage(model: str, version: int) -> Response:
        binding = feature_binding(registry, model, version) if registry is not None else None
        return json_response(model_lineage(metadata, model, version, binding).to_dict())

    return api
