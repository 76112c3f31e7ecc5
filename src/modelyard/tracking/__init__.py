"""Experiment tracking: experiments, runs, params, metrics, artifacts, dataset lineage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.tracking._backend import TrackingBackend
from modelyard.tracking._client import ActiveRun, RunList, Tracker, active_run
from modelyard.tracking._compare import RunComparison
from modelyard.tracking._entities import (
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

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.tracking._sql import SqlTracking


def open_tracker(settings: Settings) -> Tracker:
    """A tracker on the stores `settings` name, or on the server at `tracking_uri`."""
    if settings.tracking_uri:
        from modelyard.tracking._rest import RestTracking

        return Tracker(RestTracking(settings.tracking_uri))
    return Tracker(open_local_backend(settings))


def open_local_backend(settings: Settings) -> SqlTracking:
    from modelyard.store import open_stores
    from modelyard.tracking._sql import SqlTracking

    return SqlTracking(*open_stores(settings))


__all__ = [
    "ActiveRun",
    "Artifact",
    "DatasetInput",
    "Experiment",
    "LogBatch",
    "Metric",
    "Run",
    "RunComparison",
    "RunList",
    "RunPage",
    "RunQuery",
    "RunSpec",
    "RunStatus",
    "Tracker",
    "TrackingBackend",
    "active_run",
    "open_local_backend",
    "open_tracker",
]
