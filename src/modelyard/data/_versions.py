"""Dataset versions: named, numbered, content-hashed tables with their schema, ranges,
quality profile and what they were derived from, kept in the metadata database.

The digest is the one a run's `log_dataset` records (`describe_dataset`), so a run that used
the same data links to the version. A file is hashed by its bytes (as a run hashes it), a
DataFrame or a Parquet folder by its content. Logging a digest the name already has returns
that version; new content gets the next number. The data itself is not stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.models._signature import ColumnSpec, Signature, infer_signature
from modelyard.store import MetadataStore
from modelyard.store._tables import DatasetVersionRow, table_of
from modelyard.tracking._entities import now_ms

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

T = table_of(DatasetVersionRow)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}")
_ATTEMPTS = 3


@dataclass(frozen=True)
class DatasetVersion:
    """One stored version. `ranges` maps numeric and datetime columns to their observed
    `{"min": ..., "max": ...}` (numbers, or ISO 8601 text for datetimes)."""

    name: str
    version: int
    digest: str
    num_rows: int
    num_columns: int
    schema: Signature
    ranges: dict[str, dict[str, Any]]
    profile: dict[str, Any]
    lineage: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created_by: str = ""
    created_at: int = 0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def columns(self) -> list[ColumnSpec]:
        return list(self.schema.columns or [])

    def to_dict(self, *, profile: bool = True) -> dict[str, Any]:
        """JSON-ready; `profile=False` leaves out the (larger) quality profile."""
        data = {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "num_rows": self.num_rows,
            "num_columns": self.num_columns,
            "schema": [c.model_dump() for c in self.columns],
            "ranges": self.ranges,
            "lineage": self.lineage,
            "description": self.description,
            "tags": self.tags,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }
        return data | {"profile": self.profile} if profile else data


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`"name"` (the latest version) or `"name@3"`."""
    name, sep, version = ref.partition("@")
    if not sep:
        return check_dataset_name(name), None
    if not version.isdigit() or int(version) < 1:
        raise InvalidInput(f"dataset reference {ref!r}: write NAME or NAME@VERSION (NAME@3)")
    return check_dataset_name(name), int(version)


def check_dataset_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid dataset name {name!r}: use 1-256 letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
    return name


def read_dataset(source: Any) -> tuple[pd.DataFrame, str]:
    """The table `source` holds and its digest: a DataFrame (or Series), a Parquet or CSV
    file, or a folder of Parquet files (one dataset)."""
    import pandas as pd

    from modelyard.tracking._datasets import describe_dataset

    if isinstance(source, pd.Series):
        source = source.to_frame()
    if isinstance(source, pd.DataFrame):
        return source, describe_dataset(source, name="data", role="data").digest
    if not isinstance(source, str | os.PathLike):
        raise InvalidInput(
            f"a dataset is a pandas DataFrame or a Parquet/CSV path, not {type(source).__name__}"
        )
    path = Path(source)
    if path.is_dir():
        frame = pd.read_parquet(path)
        return frame, describe_dataset(frame, name="data", role="data").digest
    if not path.is_file():
        raise InvalidInput(f"no file or folder {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    elif suffix in (".csv", ".txt"):
        frame = pd.read_csv(path)
    else:
        raise InvalidInput(f"{str(path)!r}: read .parquet, .pq or .csv files, or a Parquet folder")
    return frame, describe_dataset(path, name="data", role="data").digest


def column_ranges(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Observed min and max of each number (not bool) and datetime column."""
    import pandas as pd

    ranges: dict[str, dict[str, Any]] = {}
    for position, name in enumerate(frame.columns):
        series = frame.iloc[:, position]
        if pd.api.types.is_bool_dtype(series.dtype):
            continue
        if pd.api.types.is_numeric_dtype(series.dtype):
            values = pd.to_numeric(series, errors="coerce").astype("float64")
            finite = values[values.abs() != float("inf")].dropna()
            if len(finite):
                ranges[str(name)] = {"min": float(finite.min()), "max": float(finite.max())}
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            present = series.dropna()
            if len(present):
                ranges[str(name)] = {
                    "min": present.min().isoformat(),
                    "max": present.max().isoformat(),
                }
    return ranges


def describe_frame(frame: pd.DataFrame) -> tuple[Signature, dict[str, dict[str, Any]]]:
    """The inferred schema of `frame` and its column ranges."""
    if len(frame.columns) == 0 or len(frame) == 0:
        raise InvalidInput("a dataset version needs at least one row and one column")
    return infer_signature(frame), column_ranges(frame)


def check_lineage(lineage: Mapping[str, Any] | None) -> dict[str, Any]:
    """`lineage` as a JSON object (what a version was derived from), or `InvalidInput`."""
    if lineage is None:
        return {}
    if not isinstance(lineage, Mapping):
        raise InvalidInput(f"lineage must be a JSON object, not {type(lineage).__name__}")
    try:
        checked: dict[str, Any] = orjson.loads(orjson.dumps(dict(lineage)))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"lineage must be JSON (text, numbers, lists, objects): {exc}") from None
    return checked


class DatasetVersions:
    """The dataset versions of one metadata database."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def log(
        self,
        source: Any,
        *,
        name: str,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> DatasetVersion:
        """Store `source` as the next version of `name`, or return the version with its
        content (its description, tags and lineage then stay as they were)."""
        from modelyard.data._profile import profile

        check_dataset_name(name)
        derived = check_lineage(lineage)
        frame, digest = read_dataset(source)
        existing = self._with_digest(name, digest)
        if existing is not None:
            return existing
        schema, ranges = describe_frame(frame)
        row = {
            "name": name,
            "digest": digest,
            "num_rows": len(frame),
            "num_columns": len(frame.columns),
            "schema_json": orjson.dumps(
                {"columns": [c.model_dump() for c in schema.columns or []], "ranges": ranges}
            ).decode(),
            "profile": orjson.dumps(profile(frame).to_dict()).decode(),
            "lineage": orjson.dumps(derived).decode(),
            "description": description,
            "tags": orjson.dumps({str(k): str(v) for k, v in (tags or {}).items()}).decode(),
            "created_by": actor,
            "created_at": now_ms(),
        }

        def work(conn: Connection) -> int:
            same = _digest_query(name, digest)
            found = conn.execute(same).mappings().first()
            if found is not None:
                return int(found["version"])
            latest = conn.scalar(select(func.max(T.c.version)).where(T.c.name == name))
            version = (latest or 0) + 1
            conn.execute(insert(T), [row | {"version": version}])
            return version

        for _ in range(_ATTEMPTS):
            try:
                version = self.metadata.write(work)
            except DbIntegrityError:
                continue  # another writer took the number: count again
            return self.get(name, version)
        raise Conflict(f"dataset {name!r} is being written by others; log it again")

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        """Version `version` of `name`, or its latest."""
        query = select(T).where(T.c.name == name)
        if version is not None:
            query = query.where(T.c.version == version)
        with self.metadata.read() as conn:
            row = conn.execute(query.order_by(T.c.version.desc()).limit(1)).mappings().first()
        if row is None:
            if version is not None and self._exists(name):
                versions = ", ".join(str(v.version) for v in self.all(name))
                raise NotFound(f"dataset {name!r} has no version {version}; versions: {versions}")
            known = ", ".join(v.name for v in self.all()) or "none"
            raise NotFound(f"no dataset {name!r}; datasets: {known}")
        return _version(dict(row))

    def resolve(self, ref: str) -> DatasetVersion:
        """The version `"name"` (latest) or `"name@3"` names."""
        name, version = parse_ref(ref)
        return self.get(name, version)

    def all(self, name: str | None = None) -> list[DatasetVersion]:
        """Every version of `name`, oldest first; without a name, each dataset's latest."""
        if name is not None:
            query = select(T).where(T.c.name == name).order_by(T.c.version)
        else:
            newest = (
                select(T.c.name, func.max(T.c.version).label("version"))
                .group_by(T.c.name)
                .subquery()
            )
            query = (
                select(T)
                .join(newest, (T.c.name == newest.c.name) & (T.c.version == newest.c.version))
                .order_by(T.c.name)
            )
        with self.metadata.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [_version(dict(row)) for row in rows]

    def with_digests(self, digests: list[str]) -> list[DatasetVersion]:
        """Every version whose content has one of `digests`, by name and version."""
        if not digests:
            return []
        query = select(T).where(T.c.digest.in_(digests)).order_by(T.c.name, T.c.version)
        with self.metadata.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [_version(dict(row)) for row in rows]

    def _with_digest(self, name: str, digest: str) -> DatasetVersion | None:
        with self.metadata.read() as conn:
            row = conn.execute(_digest_query(name, digest)).mappings().first()
        return None if row is None else _version(dict(row))

    def _exists(self, name: str) -> bool:
        with self.metadata.read() as conn:
            return conn.execute(select(T.c.id).where(T.c.name == name).limit(1)).first() is not None


def _digest_query(name: str, digest: str) -> Any:
    return (
        select(T)
        .where(T.c.name == name, T.c.digest == digest)
        .order_by(T.c.version.desc())
        .limit(1)
    )


def _version(row: Mapping[str, Any]) -> DatasetVersion:
    schema = orjson.loads(row["schema_json"])
    return DatasetVersion(
        name=row["name"],
        version=row["version"],
        digest=row["digest"],
        num_rows=row["num_rows"],
        num_columns=row["num_columns"],
        schema=Signature(columns=[ColumnSpec(**c) for c in schema["columns"]]),
        ranges=schema["ranges"],
        profile=orjson.loads(row["profile"]),
        lineage=orjson.loads(row["lineage"]),
        description=row["description"],
        tags=orjson.loads(row["tags"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


# -- comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetComparison:
    """What changed from version `a` to version `b` of a dataset: schema, ranges, row count,
    and per column the drift of the mean and of the share of missing values."""

    name: str
    a: int
    b: int
    rows: tuple[int, int]
    added: list[str]
    removed: list[str]
    changes: list[str]  # one readable line per schema or range change
    drift: dict[str, dict[str, Any]]  # column: {mean_a, mean_b, missing_rate_a, ...}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "a": self.a,
            "b": self.b,
            "rows": {"a": self.rows[0], "b": self.rows[1], "change": self.rows[1] - self.rows[0]},
            "added": self.added,
            "removed": self.removed,
            "changes": self.changes,
            "drift": self.drift,
        }


def compare_versions(a: DatasetVersion, b: DatasetVersion) -> DatasetComparison:
    """The schema diff (columns, dtypes, nullability, categories, ranges) and profile drift."""
    before = {c.name: c for c in a.columns}
    after = {c.name: c for c in b.columns}
    moved = {f"column {n!r} added ({c.dtype})" for n, c in after.items() if n not in before}
    moved |= {f"column {n!r} removed ({c.dtype})" for n, c in before.items() if n not in after}
    changes = [line for line in a.schema.diff(b.schema) if line not in moved]
    for column in before.keys() & after.keys():
        old, new = a.ranges.get(column), b.ranges.get(column)
        if old != new and old is not None and new is not None:
            changes.append(
                f"column {column!r}: range [{old['min']}, {old['max']}] → "
                f"[{new['min']}, {new['max']}]"
            )
    return DatasetComparison(
        name=a.name,
        a=a.version,
        b=b.version,
        rows=(a.num_rows, b.num_rows),
        added=[n for n in after if n not in before],
        removed=[n for n in before if n not in after],
        changes=sorted(changes),
        drift=_drift(a.profile, b.profile),
    )


def _drift(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per shared column: mean and missing rate in each profile and their differences."""
    before = {c["name"]: c for c in a.get("columns", [])}
    after = {c["name"]: c for c in b.get("columns", [])}
    drift: dict[str, dict[str, Any]] = {}
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            continue
        rate_a = old["missing"] / old["count"] if old["count"] else 0.0
        rate_b = new["missing"] / new["count"] if new["count"] else 0.0
        entry: dict[str, Any] = {
            "missing_rate_a": rate_a,
            "missing_rate_b": rate_b,
            "missing_rate_change": rate_b - rate_a,
        }
        if old.get("mean") is not None and new.get("mean") is not None:
            std = (old.get("variance") or 0.0) ** 0.5
            entry |= {"mean_a": old["mean"], "mean_b": new["mean"]}
            entry["mean_change"] = new["mean"] - old["mean"]
            entry["mean_shift_in_std"] = entry["mean_change"] / std if std > 0 else None
        drift[name] = entry
    return drift
