"""The online store: the latest feature values of each entity, for serving.

One protocol, `OnlineStore`, on SQLite (the default: a file under the home folder) and on
Redis. Both keep, per (view, key), the row with the greatest (event time, created time): a
late, replayed or repeated row changes nothing, even with many writers at once, so
materializing twice or consuming a stream again is harmless.

Encodings, the same on both stores:
- a key is the JSON array of its join-key values (`[42]`, `["42"]`, `[7,true]`): 42 and "42"
  differ and the key round-trips; float keys are refused;
- values are a JSON object (orjson; numpy scalars allowed, NaN stored as null);
- a `timestamp` feature is stored as ISO 8601 text in UTC with microseconds
  (`2024-05-01T12:00:00.000000+00:00`) and read back as that text;
- event, created and written times are integer milliseconds since the epoch, UTC.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from modelyard.errors import InvalidInput
from modelyard.features._definitions import Field
from modelyard.features._rows import KEY_TYPES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT_RANGE = {"int32": 2**31, "int64": 2**63}
_INT64 = 2**63
SCHEMES = ("sqlite:///PATH", "redis://", "rediss://")


@dataclass(frozen=True, slots=True)
class OnlineRow:
    """One entity's feature values at one event time, as written.

    `key` holds the join-key values in the view's `join_keys` order (str, int or bool);
    `created_ms` breaks ties on `event_ms` (None sorts before any created time)."""

    key: tuple[Any, ...]
    event_ms: int
    created_ms: int | None
    values: Mapping[str, Any]


@dataclass(slots=True)
class OnlineRecord:
    """What a read returns for one key; `written_ms` is when the store took it. Not frozen:
    a frozen dataclass costs several times as much to make (0.85 against 0.13 µs), once per
    key read, and nothing changes a record after the read."""

    values: dict[str, Any]
    event_ms: int
    created_ms: int | None
    written_ms: int


class OnlineStore(Protocol):
    """The latest values per (view, key); every implementation passes one contract suite."""

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Keep each row that is newer than the stored one; the rows that replaced a value."""
        ...

    def read(self, view: str, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRecord | None]:
        """The stored record of each key, in the order asked (None: nothing stored)."""
        ...

    def read_views(
        self, reads: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]
    ) -> list[list[OnlineRecord | None]]:
        """`read` of each (view, keys), in the order asked: what a request for features of
        several views needs, in one round trip where the store has round trips."""
        ...

    def read_one(self, view: str, key: tuple[Any, ...]) -> OnlineRecord | None:
        """`read` of one key: what a model server asks for most, with the fewest steps."""
        ...

    def set_watermark(self, view: str, ms: int) -> None:
        """Record that `view` is materialized up to `ms` (exclusive)."""
        ...

    def watermark(self, view: str) -> int | None: ...

    def delete_view(self, view: str) -> int:
        """Drop all of a view's rows and its watermark; the rows dropped."""
        ...

    def views(self) -> dict[str, int]:
        """The rows stored per view (views with none are left out)."""
        ...

    def close(self) -> None: ...


# -- pure functions ---------------------------------------------------------------------------


def to_ms(value: Any) -> int:
    """A moment as ms since the epoch, UTC (floored): a datetime (naive means UTC), a pandas
    Timestamp, a numpy datetime64, or an int that already is ms."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{value!r} is not a time: use a datetime or ms since the epoch")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise InvalidInput("a time is missing (NaT)")
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, datetime):
        return _datetime_ms(value)
    raise InvalidInput(
        f"{value!r} ({type(value).__name__}) is not a time: use a datetime, a pandas Timestamp, "
        "a numpy datetime64 or ms since the epoch"
    )


def _datetime_ms(value: datetime) -> int:
    if _is_nat(value):
        raise InvalidInput("a time is missing (NaT)")
    return _micros(value) // 1000


def check_value(field: Field, value: Any) -> Any:
    """`value` as stored for `field`, or InvalidInput naming the feature, its dtype and the
    value. None (and NaN, NaT) is always allowed and stored as None."""
    if value is None or _is_nan(value):
        return None
    plain = value.item() if isinstance(value, np.generic) else value
    dtype = field.dtype
    if dtype in ("float64", "float32"):
        if isinstance(plain, int | float) and not isinstance(plain, bool):
            return float(plain)
    elif dtype in ("int64", "int32"):
        whole = _whole(plain)
        if whole is not None and -_INT_RANGE[dtype] <= whole < _INT_RANGE[dtype]:
            return whole
    elif dtype == "bool":
        if isinstance(plain, bool):
            return plain
    elif dtype == "string":
        if isinstance(plain, str):
            return str(plain)
    elif dtype == "timestamp" and isinstance(value, str | datetime | np.datetime64):
        return _timestamp_text(field, value)
    raise _wrong_type(field, value)


def _is_nan(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return _is_nat(value)


def _is_nat(value: Any) -> bool:
    """Whether `value` is pandas' NaT (a datetime subclass: caught before it is used as one)."""
    return type(value).__name__ == "NaTType"


def _whole(value: Any) -> int | None:
    """An int for an integer value (bools are not integers), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _timestamp_text(field: Field, value: str | datetime | np.datetime64) -> str:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _wrong_type(field, value) from None
        return _iso(_micros(parsed))
    if isinstance(value, np.datetime64):
        return _iso(int(value.astype("datetime64[us]").astype(np.int64)))
    return _iso(_micros(value))


def _micros(value: datetime) -> int:
    """A datetime (naive means UTC) as µs since the epoch, floored."""
    to_pydatetime = getattr(value, "to_pydatetime", None)
    if to_pydatetime is not None:  # a pandas Timestamp: its nanoseconds (0-999) dropped
        value = to_pydatetime(warn=False)
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def _iso(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat(timespec="microseconds")


def _wrong_type(field: Field, value: Any) -> InvalidInput:
    return InvalidInput(
        f"feature {field.name!r} is {field.dtype}, but got {value!r} ({type(value).__name__})"
    )


# -- encodings shared by the stores -----------------------------------------------------------


def encode_key(key: Sequence[Any]) -> str:
    """A key tuple as canonical JSON text: 42 and "42" differ, bools stay bools."""
    if type(key) is tuple and len(key) == 1 and type(key[0]) is int and -_INT64 <= key[0] < _INT64:
        return f"[{key[0]}]"  # the usual key, as orjson writes it
    if (
        type(key) is not tuple and (isinstance(key, str | bytes) or not isinstance(key, Sequence))
    ) or not key:
        raise InvalidInput(f"an online key must be a non-empty tuple of values, not {key!r}")
    plain = [v.item() if isinstance(v, np.generic) else v for v in key]
    for value in plain:
        if not isinstance(value, KEY_TYPES):
            raise InvalidInput(
                f"a join key must be an integer, a string or a boolean, not {value!r} "
                f"({type(value).__name__})"
            )
    try:
        return orjson.dumps(plain).decode()
    except orjson.JSONEncodeError as exc:
        raise InvalidInput(f"key {key!r} cannot be stored: {exc}") from None


def encode_values(values: Mapping[str, Any]) -> bytes:
    """Feature values as a JSON object (NaN as null)."""
    try:
        return orjson.dumps(dict(values), option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError as exc:
        raise InvalidInput(f"feature values {dict(values)!r} cannot be stored: {exc}") from None


# stored values back as a dict (what `encode_values` wrote); orjson's own function, as a
# function of ours around it costs a call per key read
decode_values: Callable[[bytes | str], dict[str, Any]] = orjson.loads


def newest_per_key(rows: Iterable[OnlineRow]) -> dict[str, OnlineRow]:
    """Of several rows per key, the newest (by event, then created time; the first on a tie,
    as the store keeps what it has), by encoded key."""
    newest: dict[str, OnlineRow] = {}
    for row in rows:
        _check_row(row)
        encoded = encode_key(row.key)
        kept = newest.get(encoded)
        if kept is None or order_of(row) > order_of(kept):
            newest[encoded] = row
    return newest


def order_of(row: OnlineRow | OnlineRecord) -> tuple[int, int]:
    """What "newer" compares: (event_ms, created_ms), a missing created time as -1."""
    return row.event_ms, row.created_ms if row.created_ms is not None else -1


def _check_row(row: OnlineRow) -> None:
    if not isinstance(row, OnlineRow):
        raise InvalidInput(f"write OnlineRow values to an online store, not {row!r}")
    for name in ("event_ms", "created_ms"):
        value = getattr(row, name)
        if (value is not None or name == "event_ms") and (
            isinstance(value, bool) or not isinstance(value, int)
        ):
            raise InvalidInput(f"OnlineRow.{name} must be ms since the epoch, not {value!r}")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- opening a store --------------------------------------------------------------------------


def open_online_store(url: str | None, home: Path) -> OnlineStore:
    """The online store at `url`: None or `sqlite:///PATH` (empty path: `home/online.db`) is
    SQLite, `redis://…` or `rediss://…` is Redis (`?prefix=NAME` puts its keys under NAME
    instead of `modelyard`, so several stores can share one Redis)."""
    # the stores import this module's types, and Redis is an optional dependency: both are
    # imported when asked for
    if url is None or url.startswith("sqlite:///"):
        from modelyard.features._online_sqlite import SqliteOnlineStore

        path = url[len("sqlite:///") :] if url is not None else ""
        return SqliteOnlineStore(Path(path) if path else Path(home) / "online.db")
    if url.startswith(("redis://", "rediss://")):
        from modelyard.features._online_redis import RedisOnlineStore

        return RedisOnlineStore(url)
    raise InvalidInput(
        f"online store URL {url!r} is not supported: use one of {', '.join(SCHEMES)}"
    )
