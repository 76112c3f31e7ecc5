"""The feature benchmark's data and its brute-force reference: the Parquet inputs both
tools read, the exact point-in-time answer every training-frame row is checked against, and
the comparison of a tool's output with it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _features_worker import FEATURES

from tracking import BENCH

DATA = BENCH / ".work" / "features"
TTLS = {"30d": 30 * 86_400, "1d": 86_400}
SEED = 7
START = "2025-01-01T00:00:00+00:00"  # the first event time; events fall in [START, START + 90d)
DAYS = 90
# Label rows: random ones, and edges a point-in-time join must get right.
EDGES = {
    0: "random time",
    1: "unknown entity",
    2: "exactly on an event time",
    3: "exactly 1 day after an event",
    4: "exactly 30 days after an event",
    5: "same entity and time as another label",
}


@dataclass(frozen=True)
class Sizes:
    """Entities x events per entity, label rows, and how long each side's online reads of 1
    and of 100 entities per call are timed."""

    entities: int = 10_000
    events: int = 100
    labels: int = 100_000
    read_s: float = 10.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(entities=1_000, labels=10_000, read_s=2.0)


# ---- data ----------------------------------------------------------------------------


def write_data(sizes: Sizes) -> tuple[Path, Path]:
    """The feature and label files for `sizes`, written once and reused."""
    import numpy as np
    import pandas as pd

    stem = f"{sizes.entities}x{sizes.events}-{sizes.labels}-seed{SEED}"
    features_path, labels_path = DATA / f"features-{stem}.parquet", DATA / f"labels-{stem}.parquet"
    if features_path.exists() and labels_path.exists():
        return features_path, labels_path
    print(f"  writing {features_path.relative_to(BENCH.parent)} and labels", file=sys.stderr)
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    start_s = int(pd.Timestamp(START).timestamp())
    n = sizes.entities * sizes.events
    entity = np.repeat(np.arange(1, sizes.entities + 1, dtype=np.int64), sizes.events)
    event = start_s + rng.integers(0, DAYS * 86_400, n)
    created = event + rng.integers(0, 3_600, n)
    values = rng.normal(size=(n, len(FEATURES)))
    again = rng.choice(n, n // 100, replace=False)  # 1 %: a later version of the same row
    entity = np.concatenate([entity, entity[again]])
    event = np.concatenate([event, event[again]])
    created = np.concatenate([created, created[again] + rng.integers(1, 3_600, len(again))])
    values = np.concatenate([values, rng.normal(size=(len(again), len(FEATURES)))])
    order = rng.permutation(len(entity))  # source order says nothing about which is newer
    frame = pd.DataFrame({"entity_id": entity[order]})
    frame["event_ts"] = pd.to_datetime(event[order], unit="s", utc=True)
    frame["created_ts"] = pd.to_datetime(created[order], unit="s", utc=True)
    for i, name in enumerate(FEATURES):
        frame[name] = values[order, i]
    _write(frame, features_path)
    _write(labels(sizes, rng, entity, event, start_s), labels_path)
    return features_path, labels_path


def labels(sizes: Sizes, rng: Any, entity: Any, event: Any, start_s: int) -> Any:
    """Label rows: 95 % at random times (from 2 days before the first event) on random
    entities, then 1 % each of unknown entities, times exactly on an event, exactly 1 day
    and 30 days after one, and copies of other label rows; shuffled, numbered in order."""
    import numpy as np
    import pandas as pd

    n = sizes.labels
    edge_n = n // 100
    kinds = np.zeros(n, dtype=np.int64)
    ids = rng.integers(1, sizes.entities + 1, n)
    times = rng.integers(start_s - 2 * 86_400, start_s + DAYS * 86_400, n)
    first = n - 5 * edge_n
    kinds[first:] = np.repeat([1, 2, 3, 4, 5], edge_n)
    ids[kinds == 1] = sizes.entities + rng.integers(1, 101, edge_n)
    for kind, offset in ((2, 0), (3, 86_400), (4, 30 * 86_400)):
        rows = rng.integers(0, len(entity), edge_n)
        ids[kinds == kind], times[kinds == kind] = entity[rows], event[rows] + offset
    copied = rng.integers(0, first, edge_n)
    ids[kinds == 5], times[kinds == 5] = ids[copied], times[copied]
    order = rng.permutation(n)
    frame = pd.DataFrame({"label_id": np.arange(n, dtype=np.int64), "entity_id": ids[order]})
    frame["event_timestamp"] = pd.to_datetime(times[order], unit="s", utc=True)
    frame["edge"] = kinds[order]
    frame["label"] = rng.integers(0, 2, n)
    return frame


def _write(frame: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.timestamp("us", tz="UTC"))
                if pa.types.is_timestamp(f.type)
                else f
                for f in table.schema
            ]
        )
    )
    temp = path.with_suffix(".tmp")
    pq.write_table(table, temp)
    temp.replace(path)


# ---- the reference ---------------------------------------------------------------------


def seconds_of(column: Any) -> Any:
    """A timestamp column as int64 seconds since the epoch."""
    import numpy as np

    return column.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[s]").astype(np.int64)


def load_inputs(features_path: Path, labels_path: Path) -> tuple[Any, Any]:
    """Features (with their position in the file) and labels, times as int64 seconds."""
    import pandas as pd

    features = pd.read_parquet(features_path)
    features["position"] = range(len(features))
    features["event_s"], features["created_s"] = (
        seconds_of(features["event_ts"]),
        seconds_of(features["created_ts"]),
    )
    labels = pd.read_parquet(labels_path)
    labels["label_s"] = seconds_of(labels["event_timestamp"])
    return features, labels


def reference(features: Any, labels: Any, ttl_s: int | None) -> Any:
    """For each label row, in order: the latest feature row of its entity with event time <=
    the label's and >= the label's - ttl, ties by created time (then source position); NaN
    where none. Vectorised: one `merge_asof` on a (event, rank within the event) key."""
    import numpy as np
    import pandas as pd

    shift = 2**20
    ranked = features.sort_values(["entity_id", "event_s", "created_s", "position"], kind="stable")
    rank = ranked.groupby(["entity_id", "event_s"], sort=False).cumcount().to_numpy()
    ranked = ranked.assign(key=ranked["event_s"].to_numpy() * shift + rank)
    ranked["tied"] = ranked.groupby(["entity_id", "event_s"])["event_s"].transform("size") > 1
    left = labels[["label_id", "entity_id", "label_s"]].assign(
        key=labels["label_s"].to_numpy() * shift + (shift - 1)
    )
    joined = pd.merge_asof(
        left.sort_values("key"),
        ranked[["entity_id", "key", "event_s", "tied", *FEATURES]].sort_values("key"),
        on="key",
        by="entity_id",
        direction="backward",
    )
    if ttl_s is not None:
        stale = joined["event_s"] < joined["label_s"] - ttl_s
        joined.loc[stale, [*FEATURES, "event_s"]] = np.nan
        joined.loc[stale, "tied"] = False
    joined["tied"] = joined["tied"].fillna(False).astype(bool)
    return joined.sort_values("label_id").reset_index(drop=True)


def literal_check(features: Any, labels: Any, refs: dict[str, Any], rows: int = 2_000) -> int:
    """The vectorised reference against a plain loop over each sampled label's entity rows;
    the count of rows where they differ (must be 0)."""
    import numpy as np

    sample = labels.sample(n=min(rows, len(labels)), random_state=SEED)
    groups = features.groupby("entity_id").indices
    event, created = features["event_s"].to_numpy(), features["created_s"].to_numpy()
    values = features[FEATURES].to_numpy()
    wrong = 0
    for name, ttl_s in TTLS.items():
        expected = refs[name][FEATURES].to_numpy()
        for label_id, entity_id, label_s in sample[["label_id", "entity_id", "label_s"]].itertuples(
            index=False
        ):
            best, found = None, None
            for position in groups.get(entity_id, []):
                if event[position] > label_s or event[position] < label_s - ttl_s:
                    continue
                rank = (event[position], created[position], position)
                if best is None or rank > best:
                    best, found = rank, position
            want = values[found] if found is not None else np.full(len(FEATURES), np.nan)
            if not np.array_equal(want, expected[label_id], equal_nan=True):
                wrong += 1
    return wrong


def online_reference(features: Any, sizes: Sizes, ttl_s: int) -> Any:
    """What an online read at the end of the range should serve per known entity: the
    latest row (ties by created time), null when older than the TTL."""
    import numpy as np
    import pandas as pd

    end_s = int(pd.Timestamp(START).timestamp()) + DAYS * 86_400
    latest = features.sort_values(["entity_id", "event_s", "created_s", "position"])
    latest = latest.drop_duplicates("entity_id", keep="last").set_index("entity_id")
    latest = latest.reindex(range(1, sizes.entities + 1))
    latest.loc[latest["event_s"] < end_s - ttl_s, FEATURES] = np.nan
    return latest[FEATURES].reset_index()


# ---- checking a tool's output --------------------------------------------------------


def compare_frame(path: Path, expected: Any, labels: Any) -> dict[str, Any]:
    """Every label row of a tool's training frame against the reference: rows dropped or
    repeated, order, and rows whose features differ, by kind of label and of mismatch."""
    import numpy as np
    import pandas as pd

    got = pd.read_parquet(path)
    ids = got["label_id"].to_numpy()
    counts = np.bincount(ids, minlength=len(expected))
    dropped = np.flatnonzero(counts == 0)
    extra = int(np.maximum(counts - 1, 0).sum())
    firsts = got.drop_duplicates("label_id").set_index("label_id").reindex(expected["label_id"])
    mine, want = firsts[FEATURES].to_numpy(dtype=float), expected[FEATURES].to_numpy(dtype=float)
    present = counts > 0
    same = (np.isclose(mine, want, rtol=1e-12, atol=0) | (np.isnan(mine) & np.isnan(want))).all(
        axis=1
    )
    differ = present & ~same
    got_null, want_null = np.isnan(mine).all(axis=1), np.isnan(want).all(axis=1)
    kinds = {
        "value where the reference has none": int((differ & ~got_null & want_null).sum()),
        "null where the reference has a value": int((differ & got_null & ~want_null).sum()),
        "another row's value": int((differ & ~got_null & ~want_null).sum()),
    }
    edge = labels.set_index("label_id").reindex(expected["label_id"])["edge"].to_numpy()
    wrong = differ | ~present
    by_edge = {
        EDGES[k]: int((wrong & (edge == k)).sum()) for k in EDGES if (wrong & (edge == k)).any()
    }
    tied = expected["tied"].to_numpy()
    return {
        "rows": len(got),
        "dropped": len(dropped),
        "repeated": extra,
        "in_order": bool(len(got) == len(expected) and (ids == np.arange(len(expected))).all()),
        "differ": int(differ.sum()),
        "mismatches": int(differ.sum()) + len(dropped) + extra,
        "kinds": {k: v for k, v in kinds.items() if v},
        "by_edge": by_edge,
        "differ_on_tied_rows": int((differ & tied).sum()),
        "tied_rows": int(tied.sum()),
    }


def compare_online(path: Path, expected: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    got = pd.read_parquet(path).set_index("entity_id").reindex(expected["entity_id"])
    mine, want = got[FEATURES].to_numpy(dtype=float), expected[FEATURES].to_numpy(dtype=float)
    same = (np.isclose(mine, want, rtol=1e-12, atol=0) | (np.isnan(mine) & np.isnan(want))).all(
        axis=1
    )
    return {"entities": len(expected), "mismatches": int((~same).sum())}
