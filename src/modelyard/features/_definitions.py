"""What a feature is: entities, feature views over a source, and the services models use.

The names are the ones Feast users know. Every definition is a frozen value, checked when it
is made, so a bad definition fails in the user's module, not in a join hours later. A view's
`spec()` is the JSON the metadata store keeps per version; its `transform` (a Python function
over a DataFrame, applied to source rows before the join offline and before writing online)
is kept by name and a hash of its code, so a changed transform is a new version.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

DType = Literal["float64", "float32", "int64", "int32", "bool", "string", "timestamp"]
DTYPES: tuple[str, ...] = ("float64", "float32", "int64", "int32", "bool", "string", "timestamp")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
Transform = Callable[["pd.DataFrame"], "pd.DataFrame"]


def check_identifier(kind: str, name: object) -> str:
    """A name that is also a column name in SQL: letters, digits and `_`, not a digit first."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{kind} name {name!r} is not valid: use letters, digits and _ (at most 128, "
            "not starting with a digit)"
        )
    return name


@dataclass(frozen=True)
class Entity:
    """What features describe (a driver, a customer), and the columns that identify one."""

    name: str
    join_keys: tuple[str, ...]
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        join_keys: Sequence[str] | None = None,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_identifier("entity", name)
        keys = tuple(join_keys) if join_keys is not None else (f"{name}_id",)
        if isinstance(join_keys, str):
            raise InvalidInput(f"join_keys of entity {name!r} must be a list of column names")
        if not keys:
            raise InvalidInput(f"entity {name!r} needs at least one join key")
        for key in keys:
            check_identifier("join key", key)
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"entity {name!r} names a join key twice: {list(keys)}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "description", str(description))
        object.__setattr__(self, "tags", dict(tags or {}))

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "description": self.description,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class Field:
    """One feature of a view: its column name and type."""

    name: str
    dtype: DType = "float64"
    description: str = ""

    def __post_init__(self) -> None:
        check_identifier("feature", self.name)
        if self.dtype not in DTYPES:
            raise InvalidInput(
                f"feature {self.name!r} has dtype {self.dtype!r}; use one of {', '.join(DTYPES)}"
            )

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "description": self.description}


# -- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSource:
    """Parquet: one file, or a folder of them (read as one table), local or an fsspec URL."""

    path: str

    def spec(self) -> dict[str, Any]:
        return {"kind": "parquet", "path": self.path}


@dataclass(frozen=True)
class SqlSource:
    """A query: on DuckDB (no `url`; it can read Parquet, CSV and more itself) or on the
    PostgreSQL database at `url`."""

    query: str
    url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidInput("a SqlSource needs a query")
        if self.url is not None and not self.url.startswith(("postgresql", "postgres")):
            raise InvalidInput(
                f"SqlSource url {self.url!r}: queries run on DuckDB (no url) or PostgreSQL "
                "(postgresql://…)"
            )

    def spec(self) -> dict[str, Any]:
        return {"kind": "sql", "query": self.query, "url": self.url}


@dataclass(frozen=True, eq=False)
class DataFrameSource:
    """Rows in memory; the stored definition keeps a hash of their content."""

    frame: pd.DataFrame

    def spec(self) -> dict[str, Any]:
        import pandas as pd

        digest = hashlib.sha256(pd.util.hash_pandas_object(self.frame).to_numpy().tobytes())
        return {"kind": "dataframe", "rows": len(self.frame), "sha256": digest.hexdigest()}


Source = FileSource | SqlSource | DataFrameSource


def as_source(source: object) -> Source:
    """`source` as a Source: a path (str or Path) is Parquet, a DataFrame is rows in memory."""
    if isinstance(source, FileSource | SqlSource | DataFrameSource):
        return source
    if isinstance(source, str | Path):
        return FileSource(str(source))
    if type(source).__name__ == "DataFrame" and hasattr(source, "columns"):
        return DataFrameSource(source)  # type: ignore[arg-type]
    raise InvalidInput(
        f"a feature view's source must be a Parquet path, a DataFrame or a SqlSource, not "
        f"{type(source).__name__}"
    )


# -- views and services -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FeatureView:
    """Features of one or more entities, read from a source, as of an event time.

    For a label at time t, a view's value is the latest row with `timestamp_field` <= t and
    within `ttl` of t (no ttl: any age); rows on the same event time are ordered by
    `created_timestamp_field`. `transform` turns source rows into feature rows, offline and
    online alike; it must keep the join keys and the timestamp columns.
    """

    name: str
    entities: tuple[Entity, ...]
    source: Source
    timestamp_field: str
    features: tuple[Field, ...]
    created_timestamp_field: str | None = None
    ttl: timedelta | None = None
    transform: Transform | None = None
    online: bool = True
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        *,
        entities: Sequence[Entity],
        source: object,
        timestamp_field: str,
        features: Iterable[Field | str],
        created_timestamp_field: str | None = None,
        ttl: timedelta | None = None,
        transform: Transform | None = None,
        online: bool = True,
        description: str = "",
        owner: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_identifier("feature view", name)
        entities = tuple(entities)
        if not entities or not all(isinstance(e, Entity) for e in entities):
            raise InvalidInput(f"feature view {name!r} needs entities=[Entity(...), ...]")
        fields = tuple(f if isinstance(f, Field) else Field(f) for f in features)
        if not fields:
            raise InvalidInput(f"feature view {name!r} has no features")
        check_identifier("timestamp field", timestamp_field)
        if created_timestamp_field is not None:
            check_identifier("created timestamp field", created_timestamp_field)
        if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
            raise InvalidInput(f"ttl of feature view {name!r} must be a positive timedelta")
        if transform is not None and not callable(transform):
            raise InvalidInput(f"transform of feature view {name!r} must be a function")
        values = dict(
            name=name,
            entities=entities,
            source=as_source(source),
            timestamp_field=timestamp_field,
            features=fields,
            created_timestamp_field=created_timestamp_field,
            ttl=ttl,
            transform=transform,
            online=bool(online),
            description=str(description),
            owner=str(owner),
            tags=dict(tags or {}),
        )
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self._check_columns()

    def _check_columns(self) -> None:
        names = [f.name for f in self.features]
        if duplicated := sorted({n for n in names if names.count(n) > 1}):
            raise InvalidInput(f"feature view {self.name!r} names features twice: {duplicated}")
        reserved = {*self.join_keys, self.timestamp_field, self.created_timestamp_field or ""}
        if clash := sorted(reserved & set(names)):
            raise InvalidInput(
                f"feature view {self.name!r}: {clash} are join keys or timestamps, not features"
            )

    @property
    def join_keys(self) -> tuple[str, ...]:
        keys: list[str] = []
        for entity in self.entities:
            keys += [k for k in entity.join_keys if k not in keys]
        return tuple(keys)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def field(self, name: str) -> Field:
        for candidate in self.features:
            if candidate.name == name:
                return candidate
        raise InvalidInput(
            f"feature view {self.name!r} has no feature {name!r}; it has: "
            f"{', '.join(self.feature_names)}"
        )

    def spec(self) -> dict[str, Any]:
        """What the metadata store keeps of this view (JSON)."""
        return {
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "join_keys": list(self.join_keys),
            "source": self.source.spec(),
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
            "ttl_s": self.ttl.total_seconds() if self.ttl is not None else None,
            "features": [f.spec() for f in self.features],
            "transform": transform_spec(self.transform),
            "online": self.online,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }


def transform_spec(transform: Transform | None) -> dict[str, str] | None:
    """A transform by its name and a hash of its source code (of its bytecode if the source
    cannot be read): the same function in any checkout gives the same spec."""
    if transform is None:
        return None
    try:
        code = inspect.getsource(transform).encode()
    except (OSError, TypeError):
        code = getattr(getattr(transform, "__code__", None), "co_code", repr(transform).encode())
    name = getattr(transform, "__qualname__", type(transform).__name__)
    return {"name": name, "sha256": hashlib.sha256(code).hexdigest()}


@dataclass(frozen=True)
class FeatureService:
    """The named set of features a model uses: `view:feature` references, or whole views."""

    name: str
    features: tuple[str, ...]
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        features: Iterable[str | FeatureView],
        *,
        description: str = "",
        owner: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_identifier("feature service", name)
        refs: list[str] = []
        for item in features:
            if isinstance(item, FeatureView):
                refs += [f"{item.name}:{f}" for f in item.feature_names]
            else:
                view, feature = parse_ref(item)
                refs.append(f"{view}:{feature}")
        if not refs:
            raise InvalidInput(f"feature service {name!r} has no features")
        if len(set(refs)) != len(refs):
            raise InvalidInput(f"feature service {name!r} names a feature twice")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "features", tuple(refs))
        object.__setattr__(self, "description", str(description))
        object.__setattr__(self, "owner", str(owner))
        object.__setattr__(self, "tags", dict(tags or {}))

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "features": list(self.features),
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }


def parse_ref(ref: object) -> tuple[str, str]:
    """`"view:feature"` as (view, feature)."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise InvalidInput(f"feature reference {ref!r} must have the form 'view:feature'")
    view, feature = ref.split(":")
    return check_identifier("feature view", view), check_identifier("feature", feature)


def group_refs(refs: Iterable[str]) -> dict[str, list[str]]:
    """`view:feature` references grouped by view, in the order given."""
    grouped: dict[str, list[str]] = {}
    for ref in refs:
        view, feature = parse_ref(ref)
        grouped.setdefault(view, [])
        if feature in grouped[view]:
            raise InvalidInput(f"feature {ref!r} is asked for twice")
        grouped[view].append(feature)
    if not grouped:
        raise InvalidInput("no features asked for: pass features=['view:feature', ...]")
    return grouped


def by_name(views: Iterable[FeatureView]) -> Mapping[str, FeatureView]:
    found: dict[str, FeatureView] = {}
    for view in views:
        if view.name in found:
            raise InvalidInput(f"two feature views are named {view.name!r}")
        found[view.name] = view
    return found
