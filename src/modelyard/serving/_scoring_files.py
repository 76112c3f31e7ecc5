"""Batch scoring's files: Parquet or CSV read in chunks, outputs written under a temporary
name and published whole, so a failed job leaves no half file behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from modelyard.models import Signature
    from modelyard.serving._scoring import ChunkResult, ScoreJob

Format = Literal["parquet", "csv"]
_FORMATS: dict[str, Format] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def format_of(path: Path) -> Format:
    """The file format `path`'s suffix names."""
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"cannot tell the format of {path}: name it .parquet, .pq or .csv "
            "(Parquet or CSV; input and output formats may differ)"
        )
    return found


@dataclass
class Source:
    """The input file read in chunks of `chunk_rows` rows (CSV: all text but the id column)."""

    path: Path
    chunk_rows: int
    schema: pa.Schema
    features: tuple[str, ...]  # the columns the model reads
    id_column: str | None
    total_rows: int | None  # when the file says
    rows_read: int = 0

    def chunks(self) -> Iterator[tuple[int, pa.Table]]:
        """(position of the first row, chunk), every chunk `chunk_rows` rows but the last."""
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        count = 0
        try:
            for batch in self._batches():
                pending.append(batch)
                count += batch.num_rows
                while count >= self.chunk_rows:
                    table = pa.Table.from_batches(pending, self.schema)
                    yield self._take(table.slice(0, self.chunk_rows))
                    rest = table.slice(self.chunk_rows)
                    pending, count = rest.to_batches(), rest.num_rows
        except pa.ArrowException as exc:
            raise InvalidInput(
                f"cannot read {self.path} past row {self.rows_read}: {exc}"
            ) from None
        if count:
            yield self._take(pa.Table.from_batches(pending, self.schema))

    def _take(self, table: pa.Table) -> tuple[int, pa.Table]:
        first = self.rows_read
        self.rows_read += table.num_rows
        return first, table.combine_chunks()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        if format_of(self.path) == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(self.path) as file:
                yield from file.iter_batches(batch_size=self.chunk_rows)
            return
        import pyarrow.csv as pcsv

        types = {name: self.schema.field(name).type for name in self.schema.names}
        options = pcsv.ConvertOptions(column_types=types, strings_can_be_null=True)
        with pcsv.open_csv(self.path, convert_options=options) as reader:
            yield from reader


def open_source(job: ScoreJob, signature: Signature | None) -> Source:
    """The input file, its columns checked against the signature before any row is read."""
    schema, total = _read_schema(job.source, job.id_column)
    names = list(schema.names)
    if job.id_column is not None and job.id_column not in names:
        raise InvalidInput(
            f"id column {job.id_column!r} is not in {job.source}; its columns: {', '.join(names)}"
        )
    expected = [c.name for c in signature.columns or []] if signature is not None else []
    # pandas may have written its index as columns: they are not features
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    features = [n for n in names if (n != job.id_column and n not in index) or n in expected]
    if signature is not None and signature.columns is not None:
        from modelyard.models._conform import check_columns

        check_columns(signature.columns, features)
    elif signature is not None and signature.tensor is not None:
        shape = signature.tensor.shape
        if len(shape) != 2 or shape[1] not in (-1, len(features)):
            raise InvalidInput(
                f"the model takes a tensor of shape {tuple(shape)}; a file's rows have "
                f"{len(features)} value(s) ({', '.join(features)})"
            )
    if clash := {"row_id", "reason"} & (set(names) - {job.id_column}):
        raise InvalidInput(
            f"the input has column(s) {', '.join(sorted(clash))}, which the rejects file adds; "
            "rename them"
        )
    return Source(job.source, job.chunk_rows, schema, tuple(features), job.id_column, total)


def _read_schema(path: Path, id_column: str | None) -> tuple[pa.Schema, int | None]:
    """The input's columns (CSV: all text but the id column) and row count when known."""
    import pyarrow as pa

    try:
        if format_of(path) == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path) as file:
                return file.schema_arrow, file.metadata.num_rows
        import pyarrow.csv as pcsv

        with pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16)) as reader:
            inferred = reader.schema
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot read {path} as {format_of(path)}: {exc}") from None
    # Text throughout, so no column's type depends on the rows of the first block; the
    # checks read numbers from text. The id column keeps the type read from the first block.
    fields = [f if f.name == id_column else pa.field(f.name, pa.string()) for f in inferred]
    return pa.schema(fields), None


class Sink:
    """Scored and rejected rows, written in order to temporary files, moved into place when
    the job succeeds and removed when it fails."""

    def __init__(self, destination: Path, rejects: Path, source: Source) -> None:
        self.output = Writer(destination)
        self.rejects = Writer(rejects)
        self.source = source
        self.rows_scored = 0
        self.rows_rejected = 0

    def write(self, result: ChunkResult) -> None:
        if result.scored is not None:
            self.output.write(result.scored)
            self.rows_scored += result.scored.num_rows
        if result.rejects is not None:
            self.rejects.write(result.rejects.replace_schema_metadata(None))
            self.rows_rejected += result.rejects.num_rows

    def commit(self) -> None:
        if self.rows_scored == 0:  # still a file the next step can read
            import pyarrow as pa

            ids = (
                self.source.schema.field(self.source.id_column).type
                if self.source.id_column
                else pa.int64()
            )
            columns = {"row_id": ids, "prediction": pa.null(), "model_version": pa.int64()}
            self.output.write(pa.schema(columns).empty_table())
        self.rejects.commit()
        self.output.commit()
        if not self.rows_rejected:
            self.rejects.path.unlink(missing_ok=True)  # left by an earlier run: now wrong

    def abort(self) -> None:
        self.output.abort()
        self.rejects.abort()


class Writer:
    """Tables appended to one Parquet or CSV file, under a temporary name until `commit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = format_of(path)
        self.temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = table.schema
            self._writer = self._open(table.schema)
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def _open(self, schema: pa.Schema) -> Any:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.temp, schema)
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(self.temp, schema)

    def commit(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        os.replace(self.temp, self.path)

    def abort(self) -> None:
        writer, self._writer = self._writer, None
        with suppress(Exception):  # the job failed already; a half-written file goes anyway
            if writer is not None:
                writer.close()
        self.temp.unlink(missing_ok=True)
