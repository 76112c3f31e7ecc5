"""Materialization: the latest source row of every entity in a time range, into the online
store.

DuckDB picks, per entity, the row with the greatest (event time, created time, source
order) — the same order the offline join breaks ties by — so what is served online is what a
training frame would have joined at the end of the range. Only one row per entity leaves
DuckDB, in chunks; the online store keeps the newer of what it has and what it gets, so
overlapping or repeated runs change nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput
from modelyard.features._sources import load_source, quote

if TYPE_CHECKING:
    from modelyard.features._definitions import FeatureView
    from modelyard.features._online import OnlineStore

_CHUNK_ROWS = 10_000


def materialize_view(
    view: FeatureView, online: OnlineStore, start_us: int | None, end_us: int
) -> int:
    """Write the latest row per entity with an event time in [start_us, end_us) (µs since
    the epoch; no start: from the beginning) to `online`; the rows that replaced a stored
    value."""
    import duckdb

    from modelyard.features._rows import online_rows

    if start_us is not None and start_us >= end_us:
        raise InvalidInput(f"materializing {view.name!r}: the start must come before the end")
    con = duckdb.connect()
    try:
        loaded = load_source(con, view, "source_rows")
        _check_columns(view, loaded.types)
        result = con.execute(_latest_sql(view, loaded.relation, loaded.order, start_us, end_us))
        written = 0
        while True:
            chunk = result.fetch_df_chunk(_CHUNK_ROWS // 2048 or 1)
            if chunk.empty:
                break
            # the transform already ran in DuckDB's load: only the types are checked here
            written += online.write(view.name, online_rows(view, chunk, transform=False))
        return written
    finally:
        con.close()


def _check_columns(view: FeatureView, types: dict[str, Any]) -> None:
    needed = [*view.join_keys, view.timestamp_field, *view.feature_names]
    if view.created_timestamp_field:
        needed.append(view.created_timestamp_field)
    if missing := [c for c in needed if c not in types]:
        raise InvalidInput(
            f"the source of feature view {view.name!r} lacks the columns {missing}; it has "
            f"{sorted(types)}"
        )


def _latest_sql(
    view: FeatureView, relation: str, order: tuple[str, ...], start_us: int | None, end_us: int
) -> str:
    keys = [quote(k) for k in view.join_keys]
    event = quote(view.timestamp_field)
    created = quote(view.created_timestamp_field) if view.created_timestamp_field else "NULL"
    columns = [*keys, event, *(quote(f) for f in view.feature_names)]
    if view.created_timestamp_field:
        columns.append(created)
    where = [f"{event} IS NOT NULL", f"epoch_us({event}) < {int(end_us)}"]
    where += [f"{k} IS NOT NULL" for k in keys]
    if start_us is not None:
        where.append(f"epoch_us({event}) >= {int(start_us)}")
    ranking = ", ".join(
        [f"{event} DESC", f"{created} DESC NULLS LAST", *(f"{quote(c)} DESC" for c in order)]
    )
    return (
        f"SELECT {', '.join(columns)} FROM {relation} WHERE {' AND '.join(where)} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY {ranking}) = 1"
    )
