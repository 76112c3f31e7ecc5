"""The `import modelyard as my` facade: module-level calls on a default tracker.

The default tracker is built from `Settings` (arguments to `configure`, then the
environment) on first use, so importing modelyard opens no database.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from modelyard.models import LoadedModel, Signature
    from modelyard.models._manifest import FeatureBinding
    from modelyard.registry import ModelVersion, Registry
    from modelyard.serving._feedback import Feedback, FeedbackStore
    from modelyard.serving._log import PredictionLog
    from modelyard.store import MetadataStore

_lock = threading.Lock()
_settings: Settings | None = None
_tracker: Tracker | None = None
_registry: Registry | None = None
_prediction_log: PredictionLog | None = None
_feedback: FeedbackStore | None = None


def configure(**settings: Any) -> Settings:
    """Set where modelyard keeps its state (`home`, `db_url`, `artifacts_url`, `tracking_uri`, …).

    Unset fields come from `MODELYARD_*` environment variables, then defaults.
    """
    global _settings, _tracker, _registry, _prediction_log, _feedback
    new = Settings(**settings)
    with _lock:
        old, old_registry = _tracker, _registry
        old_log, old_feedback = _prediction_log, _feedback
        _settings, _tracker, _registry = new, None, None
        _prediction_log, _feedback = None, None
    if old_feedback is not None:
        old_feedback.close()
    if old_log is not None:
        old_log.close()
    if old_registry is not None:
        old_registry.close()
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


def default_registry() -> Registry:
    """The default model registry, over the same stores (or server) as the default tracker."""
    global _registry
    from modelyard.registry._default import registry_of

    current = tracker()
    with _lock:
        if _registry is None:
            _registry = registry_of(current)
        return _registry


def default_prediction_log() -> PredictionLog:
    """The default prediction log: the server's, Parquet files, or the default tracker's
    database, as the settings say."""
    global _prediction_log
    from modelyard.serving._log import open_prediction_log

    metadata = _local_metadata()
    settings = get_settings()
    with _lock:
        if _prediction_log is None:
            _prediction_log = open_prediction_log(settings, metadata)
        return _prediction_log


def default_feedback() -> FeedbackStore:
    """The default feedback store, checked against the default prediction log."""
    global _feedback
    from modelyard.serving._feedback import open_feedback

    log = default_prediction_log()
    metadata = _local_metadata()
    settings = get_settings()
    with _lock:
        if _feedback is None:
            _feedback = open_feedback(settings, log, metadata)
        return _feedback


def _local_metadata() -> MetadataStore | None:
    """The default tracker's metadata database, or None when it talks to a server."""
    from modelyard.tracking._sql import SqlTracking

    backend = tracker().backend
    return backend.metadata if isinstance(backend, SqlTracking) else None


def feedback(prediction_id: str, label: Any) -> Feedback:
    """Record the ground truth `label` of the prediction `prediction_id` answered with.

    A prediction takes one label; `label` is text, a number, a bool or a list of them.
    """
    return default_feedback().record([(prediction_id, label)])[0]


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


def log_model(
    model: Any,
    name: str,
    *,
    run: ActiveRun | str | None = None,
    artifact_path: str | None = None,
    input_example: Any = None,
    training_data: Any = None,
    signature: Signature | None = None,
    pii: Sequence[str] | None = None,
    flavor: str | None = None,
    allow_pickle: bool = False,
    trusted: Sequence[str] = (),
    init_args: Mapping[str, Any] | None = None,
    onnx: bool = False,
    onnx_tolerance: float = 1e-4,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
) -> ModelVersion:
    """Store `model` in the active run (or `run`) and register it as the next version of `name`.

    The signature is inferred from `training_data` (`X` or `(X, y)`) or `input_example`;
    `pii` names the columns holding personal data (default: guessed from names).
    `feature_service` names the feature service the model reads: a server then answers
    requests that carry only entity keys, with the features read online.
    """
    from modelyard.models._package import ModelSpec
    from modelyard.models._package import log_model as store

    run_id = run.id if isinstance(run, ActiveRun) else run or require_active_run().id
    spec = ModelSpec(
        name=name,
        artifact_path=artifact_path or name,
        input_example=input_example,
        training_data=training_data,
        signature=signature,
        pii=pii,
        flavor=flavor,
        allow_pickle=allow_pickle,
        trusted=tuple(trusted),
        init_args=init_args,
        onnx=onnx,
        onnx_tolerance=onnx_tolerance,
        description=description,
        tags=tags,
        features=_binding(feature_service, full_feature_names),
    )
    return store(model, spec, run_id=run_id, tracker=tracker(), registry=default_registry())


def _binding(service: str | None, full_feature_names: bool) -> FeatureBinding | None:
    if service is None:
        return None
    from modelyard.features._default import binding_of

    return binding_of(service, full_feature_names=full_feature_names)


def load_model(
    uri: str, *, allow_pickle: bool = False, trusted: Sequence[str] = (), onnx: bool = False
) -> LoadedModel:
    """Load `models:/name@alias`, `models:/name/3` or `runs:/RUN_ID/path`, every file verified.

    `onnx=True` runs the version's ONNX export on ONNX Runtime instead of the native model.
    """
    from modelyard.models._load import load_model as load

    return load(
        uri,
        tracker=tracker(),
        registry=default_registry(),
        cache_dir=get_settings().home / "cache" / "models",
        allow_pickle=allow_pickle,
        trusted=trusted,
        onnx=onnx,
    )
