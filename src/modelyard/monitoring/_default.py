"""`my.monitoring.*` on the default stores: monitors, their history, and alert rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput, NotFound
from modelyard.serving._default import Moment, to_ms

_REMOTE = (
    "monitors run where the metadata database is: with tracking_uri set, use the server's "
    "REST API (/api/v1/monitoring/monitors), or point modelyard at the database itself"
)

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.monitoring._alerts import AlertEvent, AlertRule, Delivery
    from modelyard.monitoring._monitors import Monitors
    from modelyard.monitoring._reference import TrainingReference
    from modelyard.monitoring._skew import SkewReport
    from modelyard.monitoring._spec import Monitor
    from modelyard.monitoring._windowing import MonitorRun, WindowResult
    from modelyard.registry import Registry
    from modelyard.serving._log import PredictionLog
    from modelyard.store import MetadataStore
    from modelyard.tracking._sql import SqlTracking


def monitors_on(
    metadata: MetadataStore,
    registry: Registry,
    read_artifact: Callable[[str, str], bytes],
    log: Any,
    feedback: Any,
) -> Monitors:
    """Monitors over these stores; `read_artifact(run_id, path)` reads a model's files."""
    from modelyard.monitoring._monitors import Monitors

    def training(model: str, version: int) -> TrainingReference | None:
        from modelyard.monitoring._reference import reference_of

        manifest = registry.get_manifest(model, version)
        if manifest is None or manifest.reference is None:
            return None
        return reference_of(
            model, version, manifest, lambda path: read_artifact(manifest.run_id, path)
        )

    return Monitors(metadata, log, feedback, registry, training)


def monitors_of_backend(backend: SqlTracking, log: PredictionLog) -> Monitors:
    """Monitors over a local tracking backend's database and artifacts, and `log`."""
    from modelyard.registry import SqlRegistry
    from modelyard.serving._feedback import SqlFeedback

    return monitors_on(
        backend.metadata,
        SqlRegistry(backend.metadata, backend.artifacts),
        backend.read_artifact,
        log,
        SqlFeedback(backend.metadata, log),
    )


@contextmanager
def open_monitors(settings: Settings) -> Iterator[Monitors]:
    """Monitors on the stores `settings` name (not a server: monitors run by the data)."""
    from modelyard.serving._log import open_prediction_log
    from modelyard.tracking import open_local_backend

    if settings.tracking_uri:
        raise InvalidInput(_REMOTE)
    backend = open_local_backend(settings)
    try:
        log = open_prediction_log(settings, backend.metadata)
        try:
            yield monitors_of_backend(backend, log)
        finally:
            log.close()
    finally:
        backend.close()


def default_monitors() -> Monitors:
    from modelyard._sdk import (
        _local_metadata,
        default_feedback,
        default_prediction_log,
        default_registry,
        tracker,
    )

    metadata = _local_metadata()
    if metadata is None:
        raise InvalidInput(_REMOTE)
    return monitors_on(
        metadata,
        default_registry(),
        tracker().read_artifact,
        default_prediction_log(),
        default_feedback(),
    )


def _metadata() -> MetadataStore:
    return default_monitors().metadata


def create_monitor(
    model: str,
    *,
    name: str | None = None,
    alias: str | None = None,
    version: int | None = None,
    window: str | None = None,
    rows: int | None = None,
    checks: Sequence[str | Mapping[str, Any]] | None = None,
    reference: str | Mapping[str, Any] | pd.DataFrame = "training",
    schedule: str | None = None,
    label_delay: str | int = 0,
) -> Monitor:
    """Store a monitor of `model`'s served traffic; see docs/monitoring.md ("Monitors").

    `window` is a duration ("1h") or `rows` a count of predictions per window; `checks`
    names the checks (default: data_drift, prediction_drift, data_quality, performance,
    latency); `reference` is "training", a window `{"since", "until"}` of the prediction log
    or a DataFrame; `schedule` ("15m") lets `modelyard monitor schedule` and `modelyard serve
    --monitors` run it; `label_delay` waits for labels before a window is judged.
    """
    return default_monitors().create(
        model,
        name=name,
        alias=alias,
        version=version,
        window=window,
        rows=rows,
        checks=checks,
        reference=reference,
        schedule=schedule,
        label_delay=label_delay,
    )


def get_monitor(name: str) -> Monitor:
    return default_monitors().get(name)


def list_monitors() -> list[Monitor]:
    return default_monitors().all()


def delete_monitor(name: str) -> None:
    """Delete a monitor, its history and its alert rules."""
    default_monitors().delete(name)


def run_monitor(name: str, *, now: Moment | None = None) -> MonitorRun:
    """Judge every complete window of monitor `name` not judged yet; deliver its alerts."""
    return default_monitors().run(name, now=to_ms(now, "now"))


def history(
    name: str,
    *,
    check: str | None = None,
    metric: str | None = None,
    column: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
) -> pd.DataFrame:
    """The stored results of monitor `name` as a time series (one row per window, check,
    column and metric)."""
    return default_monitors().history(
        name,
        check=check,
        metric=metric,
        column=column,
        since=to_ms(since, "since"),
        until=to_ms(until, "until"),
    )


def monitor_windows(name: str, *, limit: int = 20) -> list[WindowResult]:
    """The latest judged windows of monitor `name`, newest first, with their evidence."""
    return default_monitors().windows(name, limit=limit)


def create_alert(
    name: str,
    *,
    monitor: str,
    condition: str,
    column: str | None = None,
    for_windows: int = 1,
    severity: str = "warning",
    cooldown_s: float = 0,
    channels: Sequence[str | Mapping[str, Any]] = ("log",),
    action: str | None = None,
) -> AlertRule:
    """An alert rule over monitor `monitor`'s results, e.g. condition
    "data_drift.drift_share > 0.3" or "performance.roc_auc.lower < 0.8"."""
    from modelyard.monitoring import _alerts

    return _alerts.create_rule(
        _metadata(),
        name,
        monitor=monitor,
        condition=condition,
        column=column,
        for_windows=for_windows,
        severity=severity,
        cooldown_s=cooldown_s,
        channels=channels,
        action=action,
    )


def list_alerts(monitor: str | None = None) -> list[AlertRule]:
    from modelyard.monitoring import _alerts

    return _alerts.list_rules(_metadata(), monitor=monitor)


def delete_alert(name: str) -> None:
    from modelyard.monitoring import _alerts

    _alerts.delete_rule(_metadata(), name)


def alert_events(
    *,
    rule: str | None = None,
    monitor: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[AlertEvent]:
    """Alert events, newest first."""
    from modelyard.monitoring import _alerts

    return _alerts.list_events(_metadata(), rule=rule, monitor=monitor, state=state, limit=limit)


def alert_deliveries(event_id: int) -> list[Delivery]:
    """Every attempt to deliver one alert event, oldest first."""
    from modelyard.monitoring import _alerts

    if isinstance(event_id, bool) or not isinstance(event_id, int):
        raise NotFound(f"no alert event {event_id!r}")
    return _alerts.list_deliveries(_metadata(), event_id)


def feature_skew(
    model: str,
    version: int | None = None,
    *,
    alias: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: int | None = 10_000,
) -> SkewReport:
    """Compare the features `model`'s version (or the one behind `alias`, default: the
    latest) was served from entity keys with the same features joined offline at the
    predictions' times, value for value."""
    from modelyard._sdk import default_prediction_log, default_registry
    from modelyard.features._default import default_feature_store
    from modelyard.monitoring._feature_skew import feature_skew as compare

    registry = default_registry()
    if version is None:
        version = (
            registry.resolve(f"models:/{model}@{alias}").version
            if alias is not None
            else registry.get_model(model).latest_version
        )
    manifest = registry.get_manifest(model, version)
    return compare(
        default_prediction_log(),
        default_feature_store(),
        model,
        version,
        manifest.features if manifest is not None else None,
        since_ms=to_ms(since) if since is not None else None,
        until_ms=to_ms(until) if until is not None else None,
        limit=limit,
    )
