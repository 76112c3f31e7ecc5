"""One feature-store measurement on Feast, run by `bench/features.py` with Feast's venv.

Argument: a JSON spec, as `_features_worker.py` takes it. Prints one JSON object on stdout.
Each process makes its own feature repo (`feature_store.yaml`: a unique project, a registry
file, the local provider, the `file` offline store (Dask), SQLite or Redis online), applies
the same entity and view, and is measured by `_features_worker.py`'s code.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from _features_worker import (
    FEATURES,
    REFS,
    VIEW,
    dump_online,
    read_labels,
    serve_reads,
    timed,
    write_frame,
)


def open_store(spec: dict[str, Any], online: dict[str, Any]) -> Any:
    """A fresh repo with a project of its own; the view applied with the spec's TTL."""
    import yaml
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    project = f"bench_{uuid.uuid4().hex[:12]}"
    repo = Path(spec["folder"]) / project
    repo.mkdir(parents=True)
    if online["type"] == "sqlite":
        online = {**online, "path": str(repo / "online.db")}
    config = {
        "project": project,
        "registry": str(repo / "registry.db"),
        "provider": "local",
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }
    (repo / "feature_store.yaml").write_text(yaml.safe_dump(config))
    store = FeatureStore(repo_path=str(repo))
    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="stats_source",
        path=spec["features"],
        timestamp_field="event_ts",
        created_timestamp_column="created_ts",
    )
    view = FeatureView(
        name=VIEW,
        entities=[entity],
        ttl=timedelta(seconds=spec["ttl_s"]),
        schema=[Field(name=name, dtype=Float64) for name in FEATURES],
        source=source,
        online=True,
    )
    store.apply([entity, view])
    return store


def run_join(spec: dict[str, Any]) -> dict[str, Any]:
    labels = read_labels(spec["labels"])
    store = open_store(spec, {"type": "sqlite"})

    def join() -> Any:
        return store.get_historical_features(entity_df=labels, features=REFS).to_df()

    frame, figures = timed(join)
    write_frame(frame, spec["out"], ["label_id", *FEATURES])
    return {**figures, "rows": len(frame)}


def run_online(spec: dict[str, Any]) -> dict[str, Any]:
    """Materialize the whole range, time `get_online_features` as the parent asks
    (`serve_reads`), then dump every entity's values."""
    import pandas as pd

    url = spec["online_url"]
    online = {"type": "sqlite"} if url is None else {"type": "redis", "connection_string": url}
    store = open_store(spec, online)
    start, end = pd.Timestamp(spec["start"]), pd.Timestamp(spec["end"])
    _, figures = timed(
        lambda: store.materialize(start.to_pydatetime(), end.to_pydatetime(), [VIEW])
    )

    def read(ids: list[int]) -> Any:
        rows = [{"entity_id": i} for i in ids]
        return store.get_online_features(features=REFS, entity_rows=rows).to_dict()

    try:
        serve_reads({"get_online": read}, spec, {"materialize": figures})
        served = dump_online(lambda ids: pd.DataFrame(read(ids)), spec)
        write_frame(served, spec["out"], ["entity_id", *FEATURES])
    finally:
        if url is not None:
            store.teardown()  # deletes this project's keys, and only them
    return {}


WORKLOADS = {"join": run_join, "online": run_online}


def main() -> None:
    import feast

    spec = json.loads(sys.argv[1])
    print(json.dumps({"version": feast.__version__, **WORKLOADS[spec["workload"]](spec)}))


if __name__ == "__main__":
    main()
