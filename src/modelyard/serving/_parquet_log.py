"""The prediction log as Parquet files: a local folder or any fsspec URL (e.g. `s3://…`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelyard.errors import InvalidInput
from modelyard.serving._ids import is_id
from modelyard.serving._log import (
    ID_SKEW_MS,
    check_query,
    check_rows,
    check_version,
    decoded,
    prediction_frame,
)
from modelyard.serving._records import PredictionRow
from modelyard.tracking import _validate as v

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_DAY_MS = 86_400_000
_FOLDER_NAME_MAX = 120  # a longer quoted model name is shortened (reads filter by model)


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("model", pa.string()),
            ("version", pa.int32()),
            ("at", pa.int64()),
            ("latency_ms", pa.float64()),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
            # written since deployments; files from before lack them and read as nulls
            ("deployment", pa.string()),
            ("variant", pa.string()),
            ("parent_id", pa.string()),
        ]
    )


def _day(ms: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ms // _DAY_MS)


def _day_start_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * _DAY_MS


class ParquetPredictionLog:
    """The prediction log as Parquet files under a folder or fsspec URL.

    Layout: `model=<name>/date=YYYY-MM-DD/part-<first id>-<random>.parquet`, one file per
    model and day of each `write`, rows sorted by id. A file is written under `_tmp/` and
    then moved into place, so a reader never sees part of one.
    """

    write_interval_s = 0.5  # a file per model and day of each write

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec.core

        protocol, _ = fsspec.core.split_protocol(url)
        options = dict(storage_options or {})
        if protocol in ("s3", "s3a"):
            options.setdefault("use_listings_cache", False)  # other processes add files
        try:
            self._fs, root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise InvalidInput(f"cannot open the Parquet prediction log at {url!r}: {exc}") from exc
        self.url = url
        self._local = protocol in (None, "file", "local")
        self._root: str = root.rstrip("/")
        if self._local:
            self._fs.makedirs(f"{self._root}/_tmp", exist_ok=True)

    def write(self, rows: Sequence[PredictionRow], *, encoded: bool = False) -> None:
        if not rows:
            return
        check_rows(rows, parse=not encoded)
        groups: dict[tuple[str, dt.date], list[PredictionRow]] = {}
        for row in rows:
            groups.setdefault((row.model, _day(row.at_ms)), []).append(row)
        staged: list[tuple[str, str]] = []
        try:
            for (model, day), group in groups.items():
                group.sort(key=lambda row: row.id)
                final = (
                    f"{self._model_folder(model)}/date={day.isoformat()}/"
                    f"part-{group[0].id}-{uuid.uuid4().hex[:8]}.parquet"
                )
                staged.append((self._stage(group), final))
        except BaseException:
            for temp, _ in staged:
                self._fs.rm_file(temp)
            raise
        for temp, final in staged:
            self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self._fs.mv(temp, final)

    def _stage(self, rows: Sequence[PredictionRow]) -> str:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            [
                [r.id for r in rows],
                [r.model for r in rows],
                [r.version for r in rows],
                [r.at_ms for r in rows],
                [float(r.latency_ms) for r in rows],
                [r.inputs for r in rows],
                [r.outputs for r in rows],
                [r.deployment for r in rows],
                [r.variant for r in rows],
                [r.parent_id for r in rows],
            ],
            schema=_schema(),
        )
        temp = f"{self._root}/_tmp/{uuid.uuid4().hex}.parquet"
        try:
            with open(temp, "xb") if self._local else self._fs.open(temp, "wb") as out:
                pq.write_table(table, out, compression="zstd")
                if self._local:  # durable before it is moved into place
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            if self._fs.exists(temp):
                self._fs.rm_file(temp)
            raise
        return temp

    def read(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        import pyarrow.compute as pc

        check_query(model, version, since_ms, until_ms, limit)
        condition = pc.field("model") == model
        if version is not None:
            condition &= pc.field("version") == version
        if since_ms is not None:
            condition &= pc.field("at") >= since_ms
        if until_ms is not None:
            condition &= pc.field("at") < until_ms
        days = [
            day
            for day in self._days(model)
            if (since_ms is None or _day_start_ms(day) + _DAY_MS > since_ms)
            and (until_ms is None or _day_start_ms(day) < until_ms)
        ]
        tables = []
        found = 0
        for day in sorted(days, reverse=True):  # newest first: a limit stops early
            table = self._table(self._files(model, day), condition)
            tables.append(table)
            found += table.num_rows
            if limit is not None and found >= limit:
                break
        return self._frame(tables, limit)

    def _frame(self, tables: list[pa.Table], limit: int | None) -> pd.DataFrame:
        import pyarrow as pa

        if not tables:
            return prediction_frame([], [], [], [], [], [], [])
        table = pa.concat_tables(tables).sort_by("id")
        if limit is not None:
            table = table.slice(max(0, table.num_rows - limit))
        columns = {name: table.column(name).to_pylist() for name in table.column_names}
        return prediction_frame(
            columns["id"],
            columns["model"],
            columns["version"],
            columns["at"],
            columns["latency_ms"],
            decoded(columns["inputs"]),
            decoded(columns["outputs"]),
            columns["deployment"],
            columns["variant"],
            columns["parent_id"],
        )

    def find(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        import pyarrow.compute as pc

        wanted = sorted({i for i in ids if is_id(i)})
        if not wanted:
            return {}
        # A row is filed under the day of its at_ms, within ID_SKEW_MS of its id's time.
        days = {
            _day(int(i[:12], 16) + skew) for i in wanted for skew in (-ID_SKEW_MS, 0, ID_SKEW_MS)
        }
        files = [
            path
            for model_folder in self._model_folders()
            for day in sorted(days)
            for path in self._ls(f"{model_folder}/date={day.isoformat()}")
            if _first_id(path) <= wanted[-1]
        ]
        table = self._table(files, pc.field("id").isin(wanted), columns=["id", "model", "version"])
        return {
            i: (m, ver)
            for i, m, ver in zip(
                table.column("id").to_pylist(),
                table.column("model").to_pylist(),
                table.column("version").to_pylist(),
                strict=True,
            )
        }

    def count(self, model: str | None = None, version: int | None = None) -> int:
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        condition = None
        if model is not None:
            condition = pc.field("model") == v.check_name("model", model)
        if version is not None:
            by_version = pc.field("version") == check_version(version)
            condition = by_version if condition is None else condition & by_version
        folders = [self._model_folder(model)] if model is not None else self._model_folders()
        files = [
            path
            for folder in folders
            for path in (self._fs.find(folder) if self._fs.exists(folder) else [])
            if _is_part(path)
        ]
        if not files:
            return 0
        dataset = ds.dataset(files, schema=_schema(), format="parquet", filesystem=self._arrow_fs)
        return int(dataset.count_rows(filter=condition))

    def close(self) -> None:
        """Nothing to release: every write is a finished file."""

    def __repr__(self) -> str:
        return f"ParquetPredictionLog({self.url!r})"

    # listing

    @property
    def _arrow_fs(self) -> Any:
        if self._local:
            import pyarrow.fs

            return pyarrow.fs.LocalFileSystem()
        return self._fs

    def _model_folder(self, model: str) -> str:
        name = quote(model, safe="")
        if len(name) > _FOLDER_NAME_MAX:  # file systems allow 255 bytes per name
            name = f"{name[:80]}~{hashlib.sha256(model.encode()).hexdigest()[:16]}"
        return f"{self._root}/model={name}"

    def _model_folders(self) -> list[str]:
        return [p for p in self._ls(self._root) if p.rsplit("/", 1)[-1].startswith("model=")]

    def _days(self, model: str) -> list[dt.date]:
        days = []
        for path in self._ls(self._model_folder(model)):
            name = path.rsplit("/", 1)[-1]
            if name.startswith("date="):
                try:
                    days.append(dt.date.fromisoformat(name[5:]))
                except ValueError:
                    continue
        return days

    def _files(self, model: str, day: dt.date) -> list[str]:
        return self._ls(f"{self._model_folder(model)}/date={day.isoformat()}")

    def _ls(self, folder: str) -> list[str]:
        try:
            paths: list[str] = self._fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return [p.rstrip("/") for p in paths]

    def _table(
        self, files: list[str], condition: Any, columns: list[str] | None = None
    ) -> pa.Table:
        import pyarrow.dataset as ds

        files = [path for path in files if _is_part(path)]
        if not files:
            empty = _schema().empty_table()
            return empty if columns is None else empty.select(columns)
        dataset = ds.dataset(files, schema=_schema(), format="parquet", filesystem=self._arrow_fs)
        return dataset.to_table(columns=columns, filter=condition)


def _is_part(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("part-") and name.endswith(".parquet")


def _first_id(path: str) -> str:
    return path.rsplit("/", 1)[-1][5:37]
