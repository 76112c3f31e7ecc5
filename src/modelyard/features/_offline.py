"""The offline point-in-time join: label rows with the feature values they could have seen.

For a label at time t and a view, the value comes from the view's row with the same join keys,
event time <= t and (with a ttl) event time >= t - ttl, both ends inclusive, that has the
greatest (event time, created time); a null created time sorts lowest and a remaining tie goes
to the row that comes last in the source. The join runs on DuckDB, one view at a time: an
ASOF join finds each numbered label row's latest event time, then only the source rows on that
(keys, event time) are ranked. Feature sources are never pulled into pandas.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput, NotFound
from modelyard.features._definitions import FeatureView, Field, group_refs
from modelyard.features._sources import SOURCE_ROW, LoadedSource, load_source, quote

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

_PROBE = "__modelyard_labels"
_ROW = "__modelyard_label_row"
_TS = "__modelyard_label_ts"
_EVENT = "__modelyard_event_ns"
_CREATED = "__modelyard_created_ns"
_DATABASE: duckdb.DuckDBPyConnection | None = None
_DATABASE_LOCK = threading.Lock()
_SQL_TYPES: dict[str, str] = {
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
}
# What a feature of each declared dtype becomes in the training frame: missing values stay
# representable without changing the kind of the column (integers do not turn into floats).
PANDAS_DTYPES: dict[str, str | None] = {
    "float64": "float64",
    "float32": "float32",
    "int64": "Int64",
    "int32": "Int32",
    "bool": "boolean",
    "string": "string",
    "timestamp": None,  # as read: datetime64, tz-aware (UTC) if the source column is
}


def training_frame(
    labels: pd.DataFrame,
    views: Mapping[str, FeatureView],
    refs: Sequence[str],
    *,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
    only_label_entities: bool = False,
) -> pd.DataFrame:
    """`labels` (all columns, same row order, a fresh RangeIndex) with one column per ref in
    `refs` (`"view:feature"`), named `feature`, or `view__feature` with `full_feature_names`.

    Each value is the feature as of the label's time (see the module docstring); where no row
    qualifies it is missing: NaN for floats, `<NA>` for `int64`/`int32`/`bool`/`string`
    features (pandas `Int64`, `Int32`, `boolean`, `string` dtypes) and NaT for timestamps.
    Label and feature times must both be timezone-naive or both aware (compared in UTC).
    `only_label_entities` narrows each source to the labels' entities before the join (a
    semi-join): less memory when the labels name a small part of the entities.
    """
    import pandas as pd

    wanted = group_refs(refs)
    chosen = _chosen_views(wanted, views)
    names = _output_names(wanted, full_feature_names, labels)
    label_ts = _label_times(labels, timestamp_column, chosen)
    con = _session()
    try:
        loaded = {
            name: load_source(con, view, f"modelyard_source_{i}")
            for i, (name, view) in enumerate(chosen.items())
        }
        for name, view in chosen.items():
            _check_source(view, loaded[name], labels, timestamp_column)
        parts = [
            _join_view(
                con,
                labels,
                label_ts,
                view,
                wanted[name],
                loaded[name],
                names[name],
                narrow=only_label_entities,
            )
            for name, view in chosen.items()
        ]
    finally:
        con.close()
    frame = labels.reset_index(drop=True)
    features = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
    ordered = [n for name in wanted for n in names[name]]
    return pd.concat([frame, features[ordered]], axis=1)


def _session() -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB session (a cursor on one in-memory database opened once: opening a
    database costs more than a small join); registrations and temp tables die with it."""
    import duckdb

    global _DATABASE
    with _DATABASE_LOCK:
        if _DATABASE is None:
            _DATABASE = duckdb.connect()
        con = _DATABASE.cursor()
    con.execute("SET TimeZone = 'UTC'")
    return con


# -- checks -------------------------------------------------------------------------------------


def _chosen_views(
    wanted: Mapping[str, list[str]], views: Mapping[str, FeatureView]
) -> dict[str, FeatureView]:
    """The views `wanted` names, each checked to have the features asked of it."""
    chosen: dict[str, FeatureView] = {}
    for name, features in wanted.items():
        if name not in views:
            known = ", ".join(sorted(views)) or "none"
            raise NotFound(f"no feature view {name!r}; known views: {known}")
        for feature in features:
            views[name].field(feature)
        chosen[name] = views[name]
    return chosen


def _output_names(
    wanted: Mapping[str, list[str]], full: bool, labels: pd.DataFrame
) -> dict[str, list[str]]:
    """The output column of each wanted feature, per view; two refs may not share one."""
    names = {v: [f"{v}__{f}" if full else f for f in fs] for v, fs in wanted.items()}
    seen: set[str] = set()
    for column in (n for view_names in names.values() for n in view_names):
        if column in seen:
            raise InvalidInput(
                f"two features would both be named {column!r}; pass full_feature_names=True "
                "to name them view__feature"
            )
        seen.add(column)
    if clash := sorted(seen & {str(c) for c in labels.columns}):
        raise InvalidInput(
            f"the labels already have columns {clash}; rename them or pass full_feature_names=True"
        )
    return names


def _label_times(
    labels: pd.DataFrame, column: str, views: Mapping[str, FeatureView]
) -> pd.Series[Any]:
    """The label times as nanoseconds since the epoch in UTC (naive times taken as they are)."""
    import pandas as pd

    for view in views.values():
        needed = [*view.join_keys, column]
        if missing := [c for c in needed if c not in labels.columns]:
            raise InvalidInput(
                f"the labels have no columns {missing}, which feature view {view.name!r} "
                f"needs; they have: {', '.join(map(str, labels.columns))}"
            )
    times = labels[column]
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(times.dtype):
        raise InvalidInput(
            f"the label column {column!r} holds {times.dtype}, not timestamps; convert it "
            "with pandas.to_datetime first"
        )
    nanos = times.astype("datetime64[ns]").reset_index(drop=True)
    return nanos.astype("int64").where(nanos.notna())


def _check_source(
    view: FeatureView,
    loaded: LoadedSource,
    labels: pd.DataFrame,
    timestamp_column: str,
) -> None:
    """The source has the declared columns, and its times agree with the labels' on zones."""
    import pandas as pd

    needed = [*view.join_keys, view.timestamp_field, *view.feature_names]
    if view.created_timestamp_field is not None:
        needed.append(view.created_timestamp_field)
    if missing := [c for c in needed if c not in loaded.types]:
        raise InvalidInput(
            f"the source of feature view {view.name!r} has no columns {missing}; it has: "
            f"{', '.join(c for c in loaded.types if c not in (*loaded.order, SOURCE_ROW))}"
        )
    label_aware = isinstance(labels[timestamp_column].dtype, pd.DatetimeTZDtype)
    for column in (view.timestamp_field, view.created_timestamp_field):
        if column is None:
            continue
        kind = loaded.types[column]
        if not (kind.startswith("TIMESTAMP") or kind == "DATE"):
            raise InvalidInput(
                f"column {column!r} of feature view {view.name!r} holds {kind}, not timestamps"
            )
        if ("TIME ZONE" in kind) != label_aware:
            raise InvalidInput(
                f"label column {timestamp_column!r} and column {column!r} of feature view "
                f"{view.name!r} must both be timezone-naive or both timezone-aware"
            )


# -- the join -----------------------------------------------------------------------------------


def _nanos(column: str, kind: str) -> str:
    """SQL for a timestamp column as nanoseconds since the epoch (UTC for aware ones)."""
    if "TIME ZONE" in kind:
        return f"epoch_ns({quote(column)})"
    return f"epoch_ns(CAST({quote(column)} AS TIMESTAMP_NS))"


def _join_sql(
    view: FeatureView, features: list[str], loaded: LoadedSource, narrow: bool = False
) -> str:
    """One view's features for the label rows of the probe that see a feature row.

    The ASOF join finds each label's latest event time (cheap: one inequality column); only
    then are the source rows on that (keys, event time) ranked by created time and position.
    """
    keys = [quote(k) for k in view.join_keys]
    created = view.created_timestamp_field
    created_sql = "NULL::BIGINT" if created is None else _nanos(created, loaded.types[created])
    order = [quote(c) for c in loaded.order]
    rank = ", ".join([f"s.{_CREATED} DESC NULLS LAST", *(f"s.{c} DESC" for c in order)])
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in [*keys, quote(view.timestamp_field)])
    if narrow:
        not_null += f" AND ({', '.join(keys)}) IN (SELECT {', '.join(keys)} FROM {_PROBE})"
    fresh = "TRUE"
    if view.ttl is not None:
        ttl_ns = (view.ttl.days * 86_400 + view.ttl.seconds) * 10**9 + view.ttl.microseconds * 1000
        fresh = f"b.{_EVENT} >= p.{_TS} - {ttl_ns}"
    selected = ", ".join(f"{_cast(f's.{quote(f)}', view.field(f))} AS {quote(f)}" for f in features)
    return f"""
        WITH feature_rows AS (
            SELECT {", ".join([*keys, *(quote(f) for f in features), *order])},
                {_nanos(view.timestamp_field, loaded.types[view.timestamp_field])} AS {_EVENT},
                {created_sql} AS {_CREATED}
            FROM {loaded.relation}
            WHERE {not_null}
        ), hits AS (
            SELECT p.{_ROW}, {", ".join(f"p.{k}" for k in keys)}, b.{_EVENT}
            FROM {_PROBE} p ASOF JOIN (SELECT {", ".join(keys)}, {_EVENT} FROM feature_rows) b
                ON {" AND ".join(f"p.{k} = b.{k}" for k in keys)} AND p.{_TS} >= b.{_EVENT}
            WHERE {fresh}
        )
        SELECT h.{_ROW}, {selected}
        FROM hits h JOIN feature_rows s
            ON {" AND ".join(f"h.{k} = s.{k}" for k in [*keys, _EVENT])}
        QUALIFY row_number() OVER (PARTITION BY h.{_ROW} ORDER BY {rank}) = 1
    """


def _cast(column: str, field: Field) -> str:
    """SQL for a feature as its declared type (timestamps stay as the source has them)."""
    if field.dtype in _SQL_TYPES:
        return f"CAST({column} AS {_SQL_TYPES[field.dtype]})"
    return column


def _join_view(
    con: duckdb.DuckDBPyConnection,
    labels: pd.DataFrame,
    label_ts: pd.Series[Any],
    view: FeatureView,
    features: list[str],
    loaded: LoadedSource,
    names: list[str],
    *,
    narrow: bool = False,
) -> pd.DataFrame:
    """The view's features for every label row (by position), under their output names."""
    import duckdb
    import numpy as np
    import pandas as pd

    keys = labels[list(view.join_keys)].reset_index(drop=True)
    usable = (keys.notna().all(axis=1) & label_ts.notna()).to_numpy()
    probe = keys[usable]
    probe[_ROW] = np.flatnonzero(usable)
    probe[_TS] = label_ts[usable].astype("int64").to_numpy()
    con.register(_PROBE, probe)
    try:
        table = con.sql(_join_sql(view, features, loaded, narrow)).to_arrow_table()
    except duckdb.Error as error:
        raise InvalidInput(
            f"joining feature view {view.name!r} failed: {error}; check that its join keys "
            f"{list(view.join_keys)} and features have matching types in labels and source"
        ) from error
    finally:
        con.unregister(_PROBE)
    frame: pd.DataFrame = table.to_pandas(types_mapper=_nullable_type)
    frame.index = pd.Index(frame.pop(_ROW).to_numpy(dtype="int64"))
    frame = frame.reindex(range(len(labels)))
    kinds = {f: PANDAS_DTYPES[view.field(f).dtype] for f in features}
    frame = frame.astype({f: kind for f, kind in kinds.items() if kind})
    frame.columns = pd.Index(names)
    return frame


def _nullable_type(arrow_type: Any) -> Any:
    """Arrow integers, booleans and strings as pandas' nullable dtypes (no float detour)."""
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype()
    return None
