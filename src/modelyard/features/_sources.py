"""A feature view's source rows as a DuckDB table, for the offline join.

Without a transform the rows never go through pandas: Parquet is read by DuckDB itself, a
DataFrame is scanned in place and a DuckDB query runs as a subquery. With a transform, the
rows are read batch by batch, transformed in pandas and appended to a DuckDB table, so the
whole source is never one pandas frame (a DataFrame source already is one).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput
from modelyard.features._definitions import (
    DataFrameSource,
    FeatureView,
    FileSource,
    SqlSource,
)

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

SOURCE_ROW = "__modelyard_source_row"
_BATCH_ROWS = 256 * 1024
_PG_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class LoadedSource:
    """A source in DuckDB: the relation to select from, its columns with their DuckDB types,
    and the columns whose ascending order is the source's row order (for the last tie-break).
    """

    relation: str
    types: dict[str, str]
    order: tuple[str, ...]


def quote(name: str) -> str:
    """`name` as a DuckDB identifier (names may be SQL keywords such as `order`)."""
    return '"' + name.replace('"', '""') + '"'


def load_source(con: duckdb.DuckDBPyConnection, view: FeatureView, name: str) -> LoadedSource:
    """Make `view`'s source rows (transformed, if the view has a transform) selectable as
    `name` on `con`."""
    source = view.source
    if view.transform is not None:
        return _load_transformed(con, view, name)
    if isinstance(source, FileSource) and _is_remote(source.path):
        return _ingest(con, view, name, _parquet_batches(source.path))
    if isinstance(source, FileSource):
        return _describe(con, name, _parquet_sql(source.path), ("file_index", "file_row_number"))
    if isinstance(source, DataFrameSource):
        con.register(f"{name}_frame", _numbered(source.frame, 0))
        return _describe(con, name, f"SELECT * FROM {name}_frame", (SOURCE_ROW,))
    if source.url is None:
        numbered = f"SELECT *, row_number() OVER () AS {SOURCE_ROW} FROM ({source.query})"
        return _describe(con, name, numbered, (SOURCE_ROW,))
    return _ingest(con, view, name, _postgres_batches(source))


def _describe(
    con: duckdb.DuckDBPyConnection, name: str, select: str, order: tuple[str, ...]
) -> LoadedSource:
    """Name `select` as a view on `con` and read its column types (nothing is scanned)."""
    import duckdb

    try:
        con.execute(f"CREATE TEMP VIEW {name} AS {select}")
        relation = con.sql(f"SELECT * FROM {name}")
    except duckdb.Error as error:
        raise InvalidInput(f"cannot read feature source: {error}") from error
    types = {col: str(typ) for col, typ in zip(relation.columns, relation.types, strict=True)}
    return LoadedSource(name, types, order)


def _parquet_sql(path: str) -> str:
    """The DuckDB scan of a Parquet file or folder, with the file name and row number in it."""
    local = Path(path.removeprefix("file://"))
    if local.is_dir():
        pattern = str(local / "**" / "*.parquet")
    elif local.exists() or any(c in path for c in "*?["):
        pattern = str(local)
    else:
        raise InvalidInput(f"Parquet source {path!r} does not exist")
    literal = "'" + pattern.replace("'", "''") + "'"
    return f"SELECT *, file_index FROM read_parquet({literal}, file_row_number = true)"


def _is_remote(path: str) -> bool:
    """Whether `path` is an fsspec URL (read through pyarrow, batch by batch) or a local path."""
    return "://" in path and not path.startswith("file://")


def _numbered(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """`frame` with its position (from `start`) as a column; the other columns are not copied."""
    import numpy as np

    return frame.assign(**{SOURCE_ROW: np.arange(start, start + len(frame), dtype="int64")})


# -- with a transform ---------------------------------------------------------------------------


def _load_transformed(con: duckdb.DuckDBPyConnection, view: FeatureView, name: str) -> LoadedSource:
    source = view.source
    if isinstance(source, FileSource):
        return _ingest(con, view, name, _parquet_batches(source.path))
    if isinstance(source, DataFrameSource):
        return _ingest(con, view, name, iter([source.frame]))
    if source.url is None:
        return _ingest(con, view, name, _duckdb_batches(con, source))
    return _ingest(con, view, name, _postgres_batches(source))


def _ingest(
    con: duckdb.DuckDBPyConnection, view: FeatureView, name: str, batches: Iterator[pd.DataFrame]
) -> LoadedSource:
    """Append `batches` (transformed by the view's transform, if any) to a DuckDB table."""
    start = 0
    created = False
    for batch in batches:
        rows = _transformed(view, batch)
        con.register(f"{name}_batch", _numbered(rows, start))
        if created:
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {name}_batch")
        else:
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_batch")
            created = True
        con.unregister(f"{name}_batch")
        start += len(rows)
    if not created:
        raise InvalidInput(f"feature view {view.name!r}: its source gave no schema")
    return _describe(con, f"{name}_rows", f"SELECT * FROM {name}", (SOURCE_ROW,))


def _transformed(view: FeatureView, batch: pd.DataFrame) -> pd.DataFrame:
    """`batch` through the view's transform, which must keep the join keys and timestamps."""
    import pandas as pd

    if view.transform is None:
        return batch
    rows = view.transform(batch)
    if not isinstance(rows, pd.DataFrame):
        raise InvalidInput(
            f"the transform of feature view {view.name!r} must return a DataFrame, not "
            f"{type(rows).__name__}"
        )
    kept = [*view.join_keys, view.timestamp_field]
    if view.created_timestamp_field is not None:
        kept.append(view.created_timestamp_field)
    if lost := [c for c in kept if c not in rows.columns]:
        raise InvalidInput(
            f"the transform of feature view {view.name!r} dropped {lost}; it must keep the "
            "join keys and timestamp columns"
        )
    return rows


def _parquet_batches(path: str) -> Iterator[pd.DataFrame]:
    """A Parquet file or folder as pandas batches, in file then row order."""
    import pyarrow.dataset as ds

    fs: Any = None
    if _is_remote(path):
        import fsspec

        fs, path = fsspec.core.url_to_fs(path)
    try:
        dataset = ds.dataset(path.removeprefix("file://"), format="parquet", filesystem=fs)
    except (FileNotFoundError, OSError) as error:
        raise InvalidInput(f"cannot read Parquet source {path!r}: {error}") from error
    empty = True
    for batch in dataset.to_batches(batch_size=_BATCH_ROWS):
        empty = False
        yield batch.to_pandas()
    if empty:
        yield dataset.schema.empty_table().to_pandas()


def _duckdb_batches(con: duckdb.DuckDBPyConnection, source: SqlSource) -> Iterator[pd.DataFrame]:
    """A DuckDB query's rows as pandas batches (read on a cursor of `con`)."""
    import duckdb

    cursor = con.cursor()
    try:
        reader = cursor.sql(source.query).to_arrow_reader(_BATCH_ROWS)
    except duckdb.Error as error:
        raise InvalidInput(f"the feature query failed on DuckDB: {error}") from error
    empty = True
    for batch in reader:
        empty = False
        yield batch.to_pandas()
    if empty:
        yield reader.schema.empty_table().to_pandas()
    cursor.close()


def _postgres_batches(source: SqlSource) -> Iterator[pd.DataFrame]:
    """A PostgreSQL query's rows as pandas batches, through SQLAlchemy."""
    import pandas as pd

    try:
        import sqlalchemy
    except ImportError as error:  # pragma: no cover - sqlalchemy is a core dependency
        raise InvalidInput("PostgreSQL feature sources need SQLAlchemy installed") from error
    url = str(source.url)
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            query = sqlalchemy.text(source.query)
            empty = True
            for chunk in pd.read_sql_query(query, connection, chunksize=_PG_CHUNK_ROWS):
                empty = False
                yield chunk
            if empty:  # no rows: the columns still tell the join what the source holds
                columns = connection.execute(query).keys()
                yield pd.DataFrame(columns=list(columns))
    finally:
        engine.dispose()
