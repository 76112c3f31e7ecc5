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
    from modelyard.store import ArtifactStore, MetadataStore
    from modelyard.tracking._sql import SqlTracking

    metadata = MetadataStore(
        settings.resolved_db_url, busy_timeout_s=settings.sqlite_busy_timeout_s
    )
    return SqlTracking(metadata, ArtifactStore(settings.resolved_artifacts_url))


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
