"""The `import modelyard as my` facade: module-level calls on a default tracker.

The default tracker is built from `Settings` (arguments to `configure`, then the
environment) on first use, so importing modelyard opens no database.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelyard.config import Settings
from modelyard.tracking import (
    ActiveRun,
    Artifact,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunComparison,
    RunList,
    Tracker,
    _client,
    open_tracker,
)
from modelyard.tracking._client import DEFAULT_EXPERIMENT, require_active_run
from modelyard.tracking._entities import View

_lock = threading.Lock()
_settings: Settings | None = None
_tracker: Tracker | None = None


def configure(**settings: Any) -> Settings:
    """Set where modelyard keeps its state (`home`, `db_url`, `artifacts_url`, `tracking_uri`, …).

    Unset fields come from `MODELYARD_*` environment variables, then defaults.
    """
    global _settings, _tracker
    new = Settings(**settings)
    with _lock:
        old, _settings, _tracker = _tracker, new, None
    if old is not None:
        old.close()
    return new


def get_settings() -> Settings:
    global _settings
    with _lock:
        if _settings is None:
            _settings = Settings()
        return _settings


def tracker() -> Tracker:
    """The default tracker, opened on first use."""
    global _tracker
    settings = get_settings()
    with _lock:
        if _tracker is None:
            _tracker = open_tracker(settings)
        return _tracker


def start_run(
    experiment: str | int = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    note: str | None = None,
) -> ActiveRun:
    """Start a run; `with my.start_run(...) as run:` ends it finished, or failed on error."""
    return tracker().start_run(
        experiment, run_name, tags=tags, nested=nested, parent_run_id=parent_run_id, note=note
    )


def active_run() -> ActiveRun | None:
    """The run active in this thread or task, if any."""
    return _client.active_run()


def log_param(key: str, value: Any) -> None:
    require_active_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    require_active_run().log_params(params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    require_active_run().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    require_active_run().log_metrics(metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    require_active_run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    require_active_run().set_tags(tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> Artifact:
    return require_active_run().log_artifact(local_path, artifact_path)


def log_dataset(
    data: Any, name: str, role: str = "training", source: str | None = None
) -> DatasetInput:
    return require_active_run().log_dataset(data, name, role, source)


def get_run(run_id: str) -> Run:
    return tracker().get_run(run_id)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return tracker().get_metric_history(run_id, key)


def search_runs(
    experiment: str | int | Sequence[str | int] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    view: View = "active",
) -> RunList:
    return tracker().search_runs(experiment, filter, order_by, max_results, page_token, view)


def compare_runs(run_ids: Sequence[str]) -> RunComparison:
    return tracker().compare_runs(run_ids)


def create_experiment(
    name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
) -> Experiment:
    return tracker().create_experiment(name, description=description, tags=tags)


def get_experiment(ref: str | int) -> Experiment:
    return tracker().get_experiment(ref)


def list_experiments(view: View = "active") -> list[Experiment]:
    return tracker().list_experiments(view)


def delete_experiment(ref: str | int) -> None:
    tracker().delete_experiment(ref)


def restore_experiment(ref: str | int) -> None:
    tracker().restore_experiment(ref)


def delete_run(run_id: str) -> None:
    tracker().delete_run(run_id)


def restore_run(run_id: str) -> None:
    tracker().restore_run(run_id)


def list_artifacts(run_id: str) -> list[Artifact]:
    return tracker().list_artifacts(run_id)


def download_artifact(run_id: str, path: str, dest: str | os.PathLike[str] = ".") -> Path:
    return tracker().download_artifact(run_id, path, dest)
