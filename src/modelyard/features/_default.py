"""`my.features.*` on the default stores: definitions in the metadata database, online values
in the online store the settings name (`online_url`, else `redis_url`, else SQLite under the
home)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.features._ingest import DeadLetter, IngestStats
    from modelyard.features._registry import Change, Definable, Definition, Kind
    from modelyard.features._store import FeatureStore, OnlineFeatures
    from modelyard.models._manifest import FeatureBinding
    from modelyard.store import MetadataStore

_REMOTE = (
    "the feature store lives where the metadata database is: with tracking_uri set, use the "
    "server's REST API (/api/v1/features), or point modelyard at the database itself"
)
_lock = threading.Lock()
_default: tuple[object, FeatureStore] | None = None  # (the metadata it was opened on, store)


def feature_store_of(metadata: MetadataStore, settings: Settings) -> FeatureStore:
    from modelyard.features._online import open_online_store
    from modelyard.features._registry import FeatureRegistry
    from modelyard.features._store import FeatureStore

    online = open_online_store(settings.online_url or settings.redis_url, settings.home)
    return FeatureStore(FeatureRegistry(metadata), online)


@contextmanager
def open_feature_store(settings: Settings) -> Iterator[FeatureStore]:
    """The feature store on the stores `settings` name (not a server: see its REST API)."""
    from modelyard.tracking import open_local_backend

    if settings.tracking_uri:
        raise InvalidInput(_REMOTE)
    backend = open_local_backend(settings)
    try:
        store = feature_store_of(backend.metadata, settings)
        try:
            yield store
        finally:
            store.close()
    finally:
        backend.close()


def default_feature_store() -> FeatureStore:
    """The feature store of the default stores (what `my.configure` names); it keeps what
    `apply` was given in this process, transforms included."""
    global _default
    from modelyard._sdk import _local_metadata, get_settings

    metadata = _local_metadata()
    if metadata is None:
        raise InvalidInput(_REMOTE)
    with _lock:
        if _default is None or _default[0] is not metadata:
            if _default is not None:
                _default[1].close()
            _default = (metadata, feature_store_of(metadata, get_settings()))
        return _default[1]


def apply(
    items: Iterable[Definable], *, force: bool = False, dry_run: bool = False
) -> list[Change]:
    """Store entities, feature views and services as new versions where they changed; a
    breaking change is refused unless `force`. `dry_run`: only show what would change."""
    from modelyard.tracking._environment import current_user

    store = default_feature_store()
    if dry_run:
        return store.plan(items)
    return store.apply(items, force=force, actor=current_user())


def list_definitions(kind: Kind | None = None) -> list[Definition]:
    """The definitions in force (of `kind`: entity, view or service)."""
    return default_feature_store().registry.latest(kind)


def get_definition(kind: Kind, name: str, version: int | None = None) -> Definition:
    return default_feature_store().registry.get(kind, name, version)


def get_training_frame(
    labels: pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    service: str | None = None,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
    dask: str | None = None,
    partitions: int | None = None,
) -> pd.DataFrame:
    """Every label row with the features as of its time: the latest value at or before it,
    within the view's TTL, ties broken by the created time; nulls where none. `dask`: join
    on that Dask cluster ("local": a new one here), partitioned by entity."""
    return default_feature_store().training_frame(
        labels,
        features,
        service=service,
        timestamp_column=timestamp_column,
        full_feature_names=full_feature_names,
        dask=dask,
        partitions=partitions,
    )


def get_online(
    entities: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    service: str | None = None,
    full_feature_names: bool = False,
) -> OnlineFeatures:
    """The latest online values for each entity row; expired ones are null, flagged."""
    return default_feature_store().get_online(
        entities, features, service=service, full_feature_names=full_feature_names
    )


def push(view: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> int:
    """Write fresh rows of `view` to the online store; older ones change nothing."""
    return default_feature_store().push(view, rows)


def materialize(
    views: Sequence[str] | None = None,
    *,
    start: Any = None,
    end: Any = None,
    incremental: bool = False,
) -> dict[str, int]:
    """Load the latest value per entity in [start, end) of each view (all online views by
    default) into the online store; `incremental`: from each view's watermark to `end`
    (default now). Returns the rows written per view."""
    return default_feature_store().materialize(views, start=start, end=end, incremental=incremental)


def ingest(
    view: str,
    *,
    redis_stream: str | None = None,
    nats_stream: str | None = None,
    subject: str | None = None,
    url: str | None = None,
    batch: int = 500,
    max_messages: int | None = None,
    idle_stop_s: float | None = None,
) -> IngestStats:
    """Consume a Redis stream or a NATS JetStream stream of rows of `view` into the online
    store (at least once; a replayed or late row never overwrites a newer value); unusable
    messages go to the dead letters."""
    from modelyard._sdk import get_settings
    from modelyard.features._ingest import ingest_from

    return ingest_from(
        default_feature_store(),
        view,
        redis_stream=redis_stream,
        nats_stream=nats_stream,
        subject=subject,
        url=url,
        redis_url=get_settings().redis_url,
        batch=batch,
        max_messages=max_messages,
        idle_stop_s=idle_stop_s,
    )


def dead_letters(view: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
    """Streamed messages ingestion could not use, newest first, with the reason."""
    from modelyard.features._ingest import DeadLetters

    return DeadLetters(default_feature_store().registry.metadata).list(view, limit=limit)


def binding_of(service: str, *, full_feature_names: bool = False) -> FeatureBinding:
    """What a model version logged with `service` keeps (see `FeatureStore.binding`)."""
    return default_feature_store().binding(service, full_feature_names=full_feature_names)
