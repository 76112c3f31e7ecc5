"""One feature-store measurement on modelyard (and the floors), run by `bench/features.py`.

Argument: a JSON spec (`workload` and its inputs). Prints one JSON object on stdout.
`join` builds a training frame with `FeatureStore.training_frame`; `floor_duckdb` and
`floor_pandas` do the bare ASOF join on DuckDB and with `pandas.merge_asof` (no TTL, no
tie-breaking: timing floors only); `online` materializes into the online store, times
`get_online` in the rounds the parent asks for (`serve_reads`: a JSON line each way per
round) and writes what it serves for every entity. `timed`, `read_labels`, `serve_reads`
and `write_frame` hold the clock, the memory reading and the files, and
`_features_feast_worker.py` imports them from here, so both tools are measured by the same
code. Nothing at the top imports modelyard: Feast's interpreter does not have it."""

from __future__ import annotations

import contextlib
import gc
import json
import random
import resource
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FEATURES = [f"f{i}" for i in range(10)]
VIEW = "stats"
REFS = [f"{VIEW}:{name}" for name in FEATURES]
WARMUP_CALLS = 20
ROUND_WARMUP_CALLS = 3
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


# ---- measuring, shared with the Feast worker -------------------------------------------


def _status_kb(field: str) -> int | None:
    if not _STATUS.exists():
        return None
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def _peak_kb() -> int:
    """The process's peak resident set size so far (since the last reset), in KiB."""
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def timed(run: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """`run()` under the clock, with the process's peak RSS and how far the run raised it
    (on Linux the kernel's peak is reset just before the run through `clear_refs`)."""
    gc.collect()
    peak_before_kb = _peak_kb()
    reset = _CLEAR_REFS.exists()
    if reset:
        _CLEAR_REFS.write_text("5")
    start_kb = _status_kb("VmRSS") or peak_before_kb
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak_kb = _peak_kb()
    return result, {
        "seconds": seconds,
        "start_mb": start_kb / 1024,
        "peak_mb": max(peak_kb, peak_before_kb) / 1024,
        "increase_mb": (peak_kb - start_kb) / 1024 if reset else None,
    }


def read_labels(path: str) -> Any:
    """The label rows as pandas, read with pyarrow's defaults (before any clock)."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def write_frame(frame: Any, path: str, columns: list[str]) -> None:
    """`columns` of `frame` to Parquet, for the parent to check against the reference."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame[columns].reset_index(drop=True), preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path)


def serve_reads(
    calls: dict[str, Callable[[list[int]], Any]], spec: dict[str, Any], ready: dict[str, Any]
) -> None:
    """Time `calls` in the rounds the parent asks for, so that the tools it compares are timed
    in turns under the same spells of the machine. Prints `ready`, then answers each request
    line on stdin, `{"call": name, "width": w, "seconds": s}`, with `{"samples": [...]}`:
    seconds per call of `calls[name]` on `w` random known entities, for `s` seconds (at
    least one call) after ROUND_WARMUP_CALLS untimed ones (WARMUP_CALLS in the first round),
    in one seeded order per width that each round continues, the same order for every
    tool. Returns on `{"stop": true}`."""
    known = range(1, spec["entities"] + 1)
    choosers: dict[tuple[str, int], random.Random] = {}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        if ask.get("stop"):
            return
        call, width = calls[ask["call"]], ask["width"]
        chooser = choosers.get((ask["call"], width))
        warmup = ROUND_WARMUP_CALLS
        if chooser is None:
            chooser = choosers[ask["call"], width] = random.Random(spec["seed"] * 1_000 + width)
            warmup = WARMUP_CALLS
        for _ in range(warmup):
            call(chooser.sample(known, width))
        samples: list[float] = []
        until = time.perf_counter() + ask["seconds"]
        while not samples or time.perf_counter() < until:
            ids = chooser.sample(known, width)
            start = time.perf_counter()
            call(ids)
            samples.append(time.perf_counter() - start)
        print(json.dumps({"samples": samples}), flush=True)


def dump_online(read: Callable[[list[int]], Any], spec: dict[str, Any]) -> Any:
    """What the online store serves for every known entity, 100 per call, as one frame."""
    import pandas as pd

    ids = list(range(1, spec["entities"] + 1))
    parts = [read(ids[i : i + 100]) for i in range(0, len(ids), 100)]
    return pd.concat(parts, ignore_index=True)


# ---- modelyard -------------------------------------------------------------------------


def open_store(spec: dict[str, Any], online_url: str | None) -> Any:
    """A fresh feature store in its own folder, the view applied with the spec's TTL."""
    from datetime import timedelta

    import modelyard.features as mf
    from modelyard.features._online import open_online_store
    from modelyard.store import MetadataStore

    home = Path(spec["folder"]) / f"modelyard-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    metadata = MetadataStore(f"sqlite:///{home / 'meta.db'}")
    store = mf.FeatureStore(mf.FeatureRegistry(metadata), open_online_store(online_url, home))
    entity = mf.Entity("entity", ["entity_id"])
    view = mf.FeatureView(
        VIEW,
        entities=[entity],
        source=mf.FileSource(spec["features"]),
        timestamp_field="event_ts",
        created_timestamp_field="created_ts",
        ttl=timedelta(seconds=spec["ttl_s"]),
        features=[mf.Field(name, "float64") for name in FEATURES],
    )
    store.apply([entity, view])
    return store


def run_join(spec: dict[str, Any]) -> dict[str, Any]:
    labels = read_labels(spec["labels"])
    store = open_store(spec, None)
    frame, figures = timed(lambda: store.training_frame(labels, REFS))
    write_frame(frame, spec["out"], ["label_id", *FEATURES])
    store.close()
    return {**figures, "rows": len(frame)}


def run_floor_duckdb(spec: dict[str, Any]) -> dict[str, Any]:
    """labels ASOF LEFT JOIN features on entity and time; the Parquet file read in the clock."""
    import duckdb

    labels = read_labels(spec["labels"])
    con = duckdb.connect()
    con.register("labels", labels)
    path = spec["features"].replace("'", "''")
    selected = ", ".join(f"f.{name}" for name in FEATURES)
    sql = (
        f"SELECT l.*, {selected} FROM labels l ASOF LEFT JOIN read_parquet('{path}') f "
        "ON l.entity_id = f.entity_id AND l.event_timestamp >= f.event_ts"
    )
    frame, figures = timed(lambda: con.sql(sql).df())
    return {**figures, "rows": len(frame)}


def run_floor_pandas(spec: dict[str, Any]) -> dict[str, Any]:
    """`merge_asof` by entity on the sorted frames; reading the Parquet file in the clock."""
    import pandas as pd

    labels = read_labels(spec["labels"])

    def join() -> Any:
        features = pd.read_parquet(spec["features"])
        left = labels.sort_values("event_timestamp")
        right = features.sort_values("event_ts")[["entity_id", "event_ts", *FEATURES]]
        return pd.merge_asof(
            left, right, left_on="event_timestamp", right_on="event_ts", by="entity_id"
        )

    frame, figures = timed(join)
    return {**figures, "rows": len(frame)}


def run_online(spec: dict[str, Any]) -> dict[str, Any]:
    """Materialize the whole range, time `get_online` (and on Redis the floor) as the parent
    asks (`serve_reads`), then dump every entity's values."""
    import pandas as pd

    store = open_store(spec, spec["online_url"])
    start, end = pd.Timestamp(spec["start"]), pd.Timestamp(spec["end"])
    written, figures = timed(lambda: store.materialize([VIEW], start=start, end=end))
    now_ms = int(end.value // 1_000_000)  # the TTL is judged at the end of the range

    def read(ids: list[int]) -> Any:
        return store.get_online({"entity_id": ids}, REFS, now=now_ms).rows

    try:
        with contextlib.ExitStack() as stack:
            calls = {"get_online": read}
            if spec["online_url"] is not None:
                calls["floor"] = stack.enter_context(redis_floor(store.online, spec))
            serve_reads(calls, spec, {"materialize": figures, "written": written[VIEW]})
        served = dump_online(lambda ids: pd.DataFrame(read(ids)), spec)
        write_frame(served, spec["out"], ["entity_id", *FEATURES])
    finally:
        if spec["online_url"] is not None:  # Redis: leave nothing behind
            store.online.delete_view(VIEW)
        store.close()
    return {}


@contextlib.contextmanager
def redis_floor(online: Any, spec: dict[str, Any]) -> Iterator[Callable[[list[int]], Any]]:
    """The 1-entity read with no client library: one HMGET of the stored row (the layout
    `RedisOnlineStore` documents) on a plain socket, its answer parsed by hiredis. The round
    trip every Redis client pays."""
    import socket
    from urllib.parse import urlsplit

    import hiredis

    parts = urlsplit(spec["online_url"])
    sock = socket.create_connection((parts.hostname, parts.port or 6379))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = hiredis.Reader()

    def call(*args: str) -> Any:
        words = [word.encode() for word in args]
        sock.sendall(
            b"".join([b"*%d\r\n" % len(words), *(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)])
        )
        while (answer := reader.gets()) is False:
            reader.feed(sock.recv(65536))
        return answer

    try:
        call("SELECT", parts.path.strip("/") or "0")
        yield lambda ids: call("HMGET", f"{online.prefix}:fv:{VIEW}:[{ids[0]}]", "e", "c", "w", "v")
    finally:
        sock.close()


WORKLOADS = {
    "join": run_join,
    "floor_duckdb": run_floor_duckdb,
    "floor_pandas": run_floor_pandas,
    "online": run_online,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(WORKLOADS[spec["workload"]](spec)))


if __name__ == "__main__":
    main()
