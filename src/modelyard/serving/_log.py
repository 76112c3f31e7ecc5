"""The prediction log: every served prediction, in the metadata database or in Parquet files.

All implementations take `PredictionRow`s (inputs and outputs as JSON text) and read back
one DataFrame per query, ordered by prediction id, which is time order. The database log
suits modest traffic and answers feedback lookups by primary key; the Parquet log (a local
folder or any fsspec URL, e.g. `s3://bucket/predictions`) suits high volume and analysis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import ColumnElement, bindparam, func, select

from modelyard._http import ServerApi
from modelyard.errors import InvalidInput
from modelyard.serving._ids import is_id
from modelyard.serving._records import PredictionRow
from modelyard.store._prepared import Prepared
from modelyard.store._tables import PredictionLogRow, table_of
from modelyard.tracking import _validate as v

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.store import MetadataStore

P = table_of(PredictionLogRow)
COLUMNS = (
    "prediction_id", "model", "version", "at", "latency_ms", "inputs", "outputs",
    "deployment", "variant", "parent_id",
)  # fmt: skip
_DEPLOYMENT_COLUMNS = ("deployment", "variant", "parent_id")
ID_SKEW_MS = 3_600_000  # the time in a row's id and its `at_ms` agree within an hour
_INT32_MAX = 2**31 - 1
_LOOKUP_CHUNK = 500  # ids per `IN (…)`: far below any database's parameter limit


class PredictionLog(Protocol):
    """Where served predictions are recorded and read back.

    `write_interval_s` is how long the log writer lets rows wait before it writes them:
    short where a write is a cheap transaction, so the writer's work comes in slices too
    small to show in the serving latency; longer where every write makes a file.
    """

    write_interval_s: float

    def write(self, rows: Sequence[PredictionRow], *, encoded: bool = False) -> None:
        """Store `rows`: all of them, or on error none. `encoded`: their inputs and outputs
        were written by `prediction_rows` (the log writer's), so they are not parsed again to
        check that they are JSON."""
        ...

    def read(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Predictions of `model` with `since_ms <= at < until_ms`, oldest first.

        `limit` keeps the most recent rows. Columns: `COLUMNS`; `inputs` and `outputs`
        hold the decoded JSON of each row; `deployment`, `variant` and `parent_id` are
        None for a model served by name.
        """
        ...

    def find(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """(model, version) of each of `ids` that the log holds."""
        ...

    def count(self, model: str | None = None, version: int | None = None) -> int: ...

    def close(self) -> None: ...


# -- checks and frames shared by every implementation ------------------------------------


def check_rows(rows: Sequence[PredictionRow], *, parse: bool = True) -> None:
    """Refuse rows the log could not store or find again, before anything is written.
    `parse=False` trusts that inputs and outputs are JSON text (the costly part to check)."""
    for row in rows:
        if not is_id(row.id):
            raise InvalidInput(
                f"prediction id {row.id!r} is malformed: ids are 32 lowercase hex digits "
                "(modelyard.serving._ids.new_ids makes them)"
            )
        v.check_name("model", row.model)
        check_version(row.version)
        v.check_int64("at_ms", row.at_ms, minimum=0)
        if abs(int(row.id[:12], 16) - row.at_ms) > ID_SKEW_MS:
            raise InvalidInput(
                f"prediction id {row.id} was not made at its at_ms {row.at_ms}: "
                "make ids with new_ids(count, at_ms) at the time of the prediction"
            )
        latency = row.latency_ms
        if isinstance(latency, bool) or not isinstance(latency, int | float):
            raise InvalidInput(f"latency_ms of {row.id} must be a number, got {latency!r}")
        if not math.isfinite(latency):
            raise InvalidInput(f"latency_ms of {row.id} must be finite, got {latency!r}")
        _check_deployment_fields(row)
        if not parse:
            continue
        for field in ("inputs", "outputs"):
            text = getattr(row, field)
            try:
                if not isinstance(text, str):
                    raise TypeError(type(text).__name__)
                orjson.loads(text)
            except (orjson.JSONDecodeError, TypeError) as exc:
                raise InvalidInput(f"{field} of {row.id} must be JSON text ({exc})") from None


def _check_deployment_fields(row: PredictionRow) -> None:
    if row.deployment is not None:
        v.check_name("deployment", row.deployment)
    variant = row.variant
    if variant is not None and not (isinstance(variant, str) and 0 < len(variant) <= 64):
        raise InvalidInput(f"variant of {row.id} must be a name of 1 to 64 characters")
    if row.parent_id is not None and not is_id(row.parent_id):
        raise InvalidInput(f"parent_id of {row.id} must be a prediction id, got {row.parent_id!r}")


def check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= _INT32_MAX:
        raise InvalidInput(f"version must be an integer from 0 to {_INT32_MAX}, got {version!r}")
    return version


def check_query(
    model: str,
    version: int | None,
    since_ms: int | None,
    until_ms: int | None,
    limit: int | None,
) -> None:
    """Refuse malformed read arguments (shared with the feedback store)."""
    v.check_name("model", model)
    if version is not None:
        check_version(version)
    for name, value in (("since_ms", since_ms), ("until_ms", until_ms)):
        if value is not None:
            v.check_int64(name, value)
    if limit is not None:
        v.check_int64("limit", limit, minimum=0)


def prediction_frame(
    ids: Sequence[str],
    models: Sequence[str],
    versions: Sequence[int],
    at_ms: Sequence[int],
    latency_ms: Sequence[float],
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    deployments: Sequence[str | None] | None = None,
    variants: Sequence[str | None] | None = None,
    parent_ids: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """The DataFrame `PredictionLog.read` answers, from its columns (inputs/outputs decoded;
    the deployment columns all None when not given)."""
    import pandas as pd

    none: list[str | None] = [None] * len(ids)
    return pd.DataFrame(
        {
            "prediction_id": pd.Series(ids, dtype="str"),
            "model": pd.Series(models, dtype="str"),
            "version": pd.Series(versions, dtype="int64"),
            "at": time_column(at_ms),
            "latency_ms": pd.Series(latency_ms, dtype="float64"),
            "inputs": pd.Series(inputs, dtype=object),
            "outputs": pd.Series(outputs, dtype=object),
            "deployment": _optional(none if deployments is None else deployments),
            "variant": _optional(none if variants is None else variants),
            "parent_id": _optional(none if parent_ids is None else parent_ids),
        }
    )


def _optional(values: Sequence[str | None]) -> pd.Series:
    """Text that may be missing, kept as None (not NaN) for JSON and comparisons."""
    import pandas as pd

    return pd.Series(list(values), dtype=object)


def time_column(at_ms: Sequence[int]) -> pd.Series:
    """Unix milliseconds as a `datetime64[ms, UTC]` column."""
    import numpy as np
    import pandas as pd

    stamps = np.asarray(at_ms, dtype="int64").view("datetime64[ms]")
    return pd.Series(stamps).dt.tz_localize("UTC")


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a log or feedback frame as JSON-ready dicts, `at` as `at_ms`."""
    columns = {name: frame[name].tolist() for name in frame.columns if name != "at"}
    columns["at_ms"] = frame["at"].dt.as_unit("ms").astype("int64").tolist()
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """`frame_records` undone: the frame of rows received as JSON (from a server that does
    not send the deployment columns yet, they are None)."""
    return prediction_frame(
        *(
            [record[name] for record in records]
            for name in (
                "prediction_id",
                "model",
                "version",
                "at_ms",
                "latency_ms",
                "inputs",
                "outputs",
            )
        ),
        *([record.get(name) for record in records] for name in _DEPLOYMENT_COLUMNS),
    )


def decoded(texts: Iterable[str]) -> list[Any]:
    return [orjson.loads(text) for text in texts]


# -- the metadata database -----------------------------------------------------------


class SqlPredictionLog:
    """The prediction log as the `predictions` table of the metadata database.

    A row whose id is already stored is kept as it is, so a retried write adds nothing.
    """

    # The writer's encoding and inserts hold the interpreter while they run: half a second
    # of a busy server's rows at once held it ~10 ms, and the requests that came meanwhile
    # were the p99; 20 ms of a shadow's doubled rows still showed in it, 5 ms does not.
    write_interval_s = 0.005

    def __init__(self, metadata: MetadataStore, *, owns_metadata: bool = False) -> None:
        self.metadata = metadata
        self._owns = owns_metadata
        columns = ("id", "model", "version", "at", "latency_ms", "inputs", "outputs",
                   *_DEPLOYMENT_COLUMNS)  # fmt: skip
        insert = metadata.insert(P).values({name: bindparam(name) for name in columns})
        self._insert = Prepared(
            insert.on_conflict_do_nothing(index_elements=["id"]), metadata.engine.dialect
        )

    def write(self, rows: Sequence[PredictionRow], *, encoded: bool = False) -> None:
        if not rows:
            return
        check_rows(rows, parse=not encoded)
        values = [
            {
                "id": r.id,
                "model": r.model,
                "version": r.version,
                "at": r.at_ms,
                "latency_ms": float(r.latency_ms),
                "inputs": r.inputs,
                "outputs": r.outputs,
                "deployment": r.deployment,
                "variant": r.variant,
                "parent_id": r.parent_id,
            }
            for r in rows
        ]
        self.metadata.write(lambda conn: self._insert.execute_many(conn, values))

    def read(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        check_query(model, version, since_ms, until_ms, limit)
        query = select(
            P.c.id, P.c.model, P.c.version, P.c.at, P.c.latency_ms, P.c.inputs, P.c.outputs,
            P.c.deployment, P.c.variant, P.c.parent_id,
        ).where(*_where(model, version, since_ms, until_ms))  # fmt: skip
        if limit is not None:
            query = query.order_by(P.c.id.desc()).limit(limit)
        else:
            query = query.order_by(P.c.id)
        with self.metadata.read() as conn:
            rows = list(conn.execute(query).all())
        if limit is not None:
            rows.reverse()
        if not rows:
            return prediction_frame([], [], [], [], [], [], [])
        ids, models, versions, ats, latencies, inputs, outputs, *deployed = zip(*rows, strict=True)
        return prediction_frame(
            ids, models, versions, ats, latencies, decoded(inputs), decoded(outputs), *deployed
        )

    def find(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        wanted = sorted({i for i in ids if is_id(i)})
        found: dict[str, tuple[str, int]] = {}
        with self.metadata.read() as conn:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                query = select(P.c.id, P.c.model, P.c.version).where(P.c.id.in_(chunk))
                found.update((i, (m, ver)) for i, m, ver in conn.execute(query).all())
        return found

    def count(self, model: str | None = None, version: int | None = None) -> int:
        query = select(func.count()).select_from(P)
        if model is not None:
            query = query.where(P.c.model == v.check_name("model", model))
        if version is not None:
            query = query.where(P.c.version == check_version(version))
        with self.metadata.read() as conn:
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        if self._owns:
            self.metadata.close()

    def __repr__(self) -> str:
        return f"SqlPredictionLog({self.metadata.display_url!r})"


def _where(
    model: str, version: int | None, since_ms: int | None, until_ms: int | None
) -> list[ColumnElement[bool]]:
    clauses = [P.c.model == model]
    if version is not None:
        clauses.append(P.c.version == version)
    if since_ms is not None:
        clauses.append(P.c.at >= since_ms)
    if until_ms is not None:
        clauses.append(P.c.at < until_ms)
    return clauses


# -- a modelyard server --------------------------------------------------------------


class RestPredictionLog:
    """The prediction log of a modelyard server, over its REST API."""

    write_interval_s = 0.5  # a request per write

    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._api = ServerApi(base_url, timeout_s=timeout_s)
        self.base_url = self._api.base_url

    def write(self, rows: Sequence[PredictionRow], *, encoded: bool = False) -> None:
        if rows:
            # here too: NaN, for one, would not survive the trip as JSON
            check_rows(rows, parse=not encoded)
            self._api.call("POST", "/predictions", content=orjson.dumps({"rows": list(rows)}))

    def read(
        self,
        model: str,
        *,
        version: int | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        check_query(model, version, since_ms, until_ms, limit)
        params = _params(model=model, version=version, since_ms=since_ms, until_ms=until_ms)
        if limit is not None:
            params["limit"] = limit
        response = self._api.call("GET", "/predictions", params=params)
        return records_frame(orjson.loads(response.content))

    def find(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        body = orjson.dumps({"ids": list(ids)})
        found = orjson.loads(self._api.call("POST", "/predictions/find", content=body).content)
        return {i: (m["model"], m["version"]) for i, m in found["found"].items()}

    def count(self, model: str | None = None, version: int | None = None) -> int:
        params = _params(model=model, version=version)
        return int(self._api.call("GET", "/predictions/count", params=params).json()["count"])

    def close(self) -> None:
        self._api.close()

    def __repr__(self) -> str:
        return f"RestPredictionLog({self.base_url!r})"


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def open_prediction_log(settings: Settings, metadata: MetadataStore | None = None) -> PredictionLog:
    """The prediction log `settings` name: the server's at `tracking_uri`, Parquet files, or
    the metadata database (`metadata` if given; else opened here and closed with the log)."""
    if settings.tracking_uri:
        return RestPredictionLog(settings.tracking_uri)
    if settings.prediction_log == "parquet":
        from modelyard.serving._parquet_log import ParquetPredictionLog

        return ParquetPredictionLog(settings.resolved_prediction_log_url)
    if metadata is not None:
        return SqlPredictionLog(metadata)
    from modelyard.store import open_stores

    opened, _artifacts = open_stores(settings)
    return SqlPredictionLog(opened, owns_metadata=True)
