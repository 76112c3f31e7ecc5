"""REST routes of monitoring: a drift report over two tables sent in the request, and the
training reference a model version stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from modelyard.errors import InvalidInput
from modelyard.server._errors import json_response

if TYPE_CHECKING:
    from modelyard.registry import Registry


class Table(BaseModel):
    """A table in pandas' `split` orientation: column names, then rows."""

    columns: list[str]
    data: list[list[Any]]


class DriftIn(BaseModel):
    reference: Table
    current: Table
    columns: list[str] | None = None
    categorical: list[str] = Field(default_factory=list)
    methods: dict[str, Literal["ks", "chi2", "psi", "wasserstein", "jensen_shannon"]] = Field(
        default_factory=dict
    )
    thresholds: dict[str, float] = Field(default_factory=dict)
    alpha: float = 0.05
    multivariate: bool = True


def monitoring_router(registry: Registry, read_artifact: Callable[[str, str], bytes]) -> APIRouter:
    """The routes; references are read through `registry` and `read_artifact(run_id, path)`."""
    api = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])

    @api.post("/drift")
    async def drift(body: DriftIn, format: Literal["json", "html"] = "json") -> Response:
        report = await run_in_threadpool(_report, body)
        if format == "html":
            return Response(report.to_html(), media_type="text/html; charset=utf-8")
        return json_response(report.to_dict())

    @api.get("/reference/{model}/{version}")
    def reference(model: str, version: int) -> Response:
        """The training reference of a version: row counts and the profile."""
        from modelyard.monitoring._reference import read_reference

        return json_response(read_reference(registry, read_artifact, model, version).to_dict())

    return api


def _report(body: DriftIn) -> Any:
    import pandas as pd

    from modelyard.monitoring import drift_report

    frames = []
    for label, table in (("reference", body.reference), ("current", body.current)):
        if any(len(row) != len(table.columns) for row in table.data):
            raise InvalidInput(f"every row of {label}.data needs {len(table.columns)} values")
        frames.append(pd.DataFrame(table.data, columns=table.columns))
    return drift_report(
        frames[0],
        frames[1],
        columns=body.columns,
        categorical=body.categorical,
        methods=body.methods,
        thresholds=body.thresholds,
        alpha=body.alpha,
        multivariate=body.multivariate,
    )
