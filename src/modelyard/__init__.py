"""modelyard: track, version, serve, test in production, monitor and retrain ML models.

`import modelyard as my` is cheap: the SDK and its dependencies load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard._version import __version__

if TYPE_CHECKING:
    from modelyard._sdk import (
        active_run,
        compare_runs,
        configure,
        create_experiment,
        delete_experiment,
        delete_run,
        download_artifact,
        feedback,
        get_experiment,
        get_metric_history,
        get_run,
        get_settings,
        list_artifacts,
        list_experiments,
        load_model,
        log_artifact,
        log_dataset,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        restore_experiment,
        restore_run,
        search_runs,
        set_tag,
        set_tags,
        start_run,
        tracker,
    )

__all__ = [
    "__version__",
    "active_run",
    "compare_runs",
    "configure",
    "create_experiment",
    "data",
    "delete_experiment",
    "delete_run",
    "download_artifact",
    "features",
    "feedback",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "get_settings",
    "list_artifacts",
    "list_experiments",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "models",
    "monitoring",
    "registry",
    "restore_experiment",
    "restore_run",
    "rollout",
    "search_runs",
    "serving",
    "set_tag",
    "set_tags",
    "start_run",
    "tracker",
]
_SUBPACKAGES = frozenset(
    {"data", "features", "models", "monitoring", "registry", "rollout", "serving"}
)
_SDK = frozenset(__all__) - {"__version__"} - _SUBPACKAGES


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"modelyard.{name}")
    if name in _SDK:
        from modelyard import _sdk

        return getattr(_sdk, name)
    raise AttributeError(f"module 'modelyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
