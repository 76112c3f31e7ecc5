"""The online store on Redis: for many serving processes, or reads in well under a ms.

Each (view, key) is a hash `{prefix}:fv:{view}:{key as JSON}` with fields e (event ms),
c (created ms, empty when none), w (written ms) and v (the values as JSON). Newest-wins is a
Lua script, so the compare and the set are one atomic step on the server; a write sends one
script call per key, pipelined. `{prefix}:rows:{view}` counts a view's rows (the script adds
one per new key) and the set `{prefix}:views` names the views, which answers `views()`
without a scan. The watermark is the string `{prefix}:wm:{view}`. The keys one call touches
are not in one hash slot: this is for a single Redis (or a replicated one), not a cluster.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from modelyard.errors import InvalidInput, MissingDependency, StoreUnavailable
from modelyard.features._definitions import check_identifier
from modelyard.features._online import (
    OnlineRecord,
    OnlineRow,
    decode_values,
    encode_key,
    encode_values,
    newest_per_key,
    now_ms,
)

if TYPE_CHECKING:
    import redis

CLIENT_NAME = "modelyard-online"
_FIELDS = ["e", "c", "w", "v"]  # event, created and written times, values
# `HMGET <name> e c w v` in RESP, around the name
_HMGET_HEAD = b"*6\r\n$5\r\nHMGET\r\n"
_HMGET_TAIL = b"".join(b"$%d\r\n%s\r\n" % (len(f), f.encode()) for f in _FIELDS)
_BATCH = 1000
# KEYS: the row's hash, the view's row counter, the set of views
# ARGV: event ms, created ms ("" for none), written ms, values, view
_KEEP_NEWEST = """
local stored = redis.call('HMGET', KEYS[1], 'e', 'c')
if stored[1] then
    local event, created = tonumber(ARGV[1]), tonumber(ARGV[2]) or -1
    local old_event, old_created = tonumber(stored[1]), tonumber(stored[2]) or -1
    if event < old_event or (event == old_event and created <= old_created) then
        return 0
    end
else
    redis.call('INCR', KEYS[2])
    redis.call('SADD', KEYS[3], ARGV[5])
end
redis.call('HSET', KEYS[1], 'e', ARGV[1], 'c', ARGV[2], 'w', ARGV[3], 'v', ARGV[4])
return 1
"""
# KEYS: the view's row counter, the set of views; ARGV: rows deleted, view
_FORGET_ROWS = """
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left <= 0 then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[2], ARGV[2])
end
return left
"""


class RedisOnlineStore:
    """Online values in the Redis at `url`, under keys that start with `prefix:` (given as
    the argument or as `?prefix=NAME` in the URL; `modelyard` when neither says)."""

    def __init__(self, url: str, prefix: str | None = None) -> None:
        try:
            import hiredis  # noqa: F401 - single-key reads parse with it (`_KeptConnection`)
            import redis
        except ImportError as exc:  # pragma: no cover - [redis] extra missing
            raise MissingDependency(
                "the Redis online store needs redis-py and hiredis: "
                f"pip install 'modelyard[redis]' ({exc})"
            ) from None
        self.url = url
        url, named = _without_prefix(url)
        if prefix is not None and named is not None and named != prefix:
            raise InvalidInput(
                f"the Redis online store was given two prefixes: {named!r} in its URL and "
                f"{prefix!r}; give one"
            )
        self.prefix = prefix or named or "modelyard"
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._reachable = _Reachable(self._errors, self._safe_url())
        # named so that CLIENT LIST tells them apart (a client_name in the URL wins)
        self._client: redis.Redis = redis.Redis.from_url(
            url, decode_responses=False, client_name=CLIENT_NAME
        )
        pool = self._client.connection_pool
        # one connection of the pool's kind kept for reads (`_read_rows`)
        self._direct = _KeptConnection(pool.connection_class(**pool.connection_kwargs))
        self._direct_lock = threading.Lock()
        self._heads: dict[str, str] = {}
        self._keep_newest = self._client.register_script(_KEEP_NEWEST)
        self._forget_rows = self._client.register_script(_FORGET_ROWS)

    def _safe_url(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.url)

    def _row_key(self, view: str, key: str) -> str:
        return f"{self.prefix}:fv:{view}:{key}"

    def _count_key(self, view: str) -> str:
        return f"{self.prefix}:rows:{view}"

    @property
    def _views_key(self) -> str:
        return f"{self.prefix}:views"

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        check_identifier("feature view", view)
        newest = list(newest_per_key(rows).items())
        written, replaced = now_ms(), 0
        shared = [self._count_key(view), self._views_key]
        with self._reachable:
            for start in range(0, len(newest), _BATCH):
                pipe = self._client.pipeline(transaction=False)
                for key, row in newest[start : start + _BATCH]:
                    created = "" if row.created_ms is None else row.created_ms
                    self._keep_newest(
                        keys=[self._row_key(view, key), *shared],
                        args=[row.event_ms, created, written, encode_values(row.values), view],
                        client=pipe,
                    )
                replaced += sum(int(done) for done in pipe.execute())
        return replaced

    def read(self, view: str, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRecord | None]:
        return self._records(self._names(view, keys))

    def read_one(self, view: str, key: tuple[Any, ...]) -> OnlineRecord | None:
        name = self._row_head(view) + encode_key(key)
        try:  # as `with self._reachable`, which costs two calls more
            return _record(self._read_rows([name])[0])
        except self._errors as error:
            raise self._reachable.unavailable(error) from error

    def read_views(
        self, reads: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]
    ) -> list[list[OnlineRecord | None]]:
        if len(reads) == 1:  # the usual request: nothing to join up and split again
            return [self.read(*reads[0])]
        records = self._records([name for view, keys in reads for name in self._names(view, keys)])
        found, start = [], 0
        for _, keys in reads:
            found.append(records[start : start + len(keys)])
            start += len(keys)
        return found

    def _names(self, view: str, keys: Sequence[tuple[Any, ...]]) -> list[str]:
        head = self._row_head(view)
        return [head + encode_key(key) for key in keys]

    def _row_head(self, view: str) -> str:
        """What the names of a view's rows start with, the view's name checked once."""
        head = self._heads.get(view)
        if head is None:
            head = self._heads[view] = self._row_key(check_identifier("feature view", view), "")
        return head

    def _records(self, names: list[str]) -> list[OnlineRecord | None]:
        with self._reachable:
            return [
                _record(fields)
                for start in range(0, len(names), _BATCH)
                for fields in self._read_rows(names[start : start + _BATCH])
            ]

    def _read_rows(self, names: list[str]) -> list[Any]:
        """HMGET of each row, on the connection kept for reads (`_KeptConnection`): a model
        server reads one or a few entities per request, and redis-py's command path (the
        pool, retries, metrics, a pipeline's bookkeeping per command) cost a quarter of the
        round trip for one and most of it for a hundred. While another thread holds that
        connection, or when it has broken, the read takes the client's path (a pipeline),
        which reconnects."""
        if self._direct_lock.acquire(blocking=False):
            try:
                return self._direct.hmget(names)
            except (*self._errors, OSError):
                self._direct.disconnect()  # the client's path below connects afresh
            except BaseException:
                self._direct.disconnect()  # a half-read answer must not become the next one's
                raise
            finally:
                self._direct_lock.release()
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(name, _FIELDS)
        return pipe.execute()

    def set_watermark(self, view: str, ms: int) -> None:
        check_identifier("feature view", view)
        with self._reachable:
            self._client.set(f"{self.prefix}:wm:{view}", int(ms))

    def watermark(self, view: str) -> int | None:
        check_identifier("feature view", view)
        with self._reachable:
            value = self._client.get(f"{self.prefix}:wm:{view}")
        return int(value) if value is not None else None

    def delete_view(self, view: str) -> int:
        check_identifier("feature view", view)
        pattern = f"{_glob_escape(self.prefix)}:fv:{view}:*"
        deleted = 0
        with self._reachable:
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=pattern, count=_BATCH):
                batch.append(name)
                if len(batch) >= _BATCH:
                    deleted += self._delete_rows(view, batch)
                    batch = []
            deleted += self._delete_rows(view, batch)
            self._client.delete(f"{self.prefix}:wm:{view}")
        return deleted

    def _delete_rows(self, view: str, names: list[bytes]) -> int:
        """Delete rows and count down the view's counter by the rows that were there."""
        if not names:
            return 0
        deleted = int(self._client.delete(*names))
        if deleted:
            self._forget_rows(keys=[self._count_key(view), self._views_key], args=[deleted, view])
        return deleted

    def views(self) -> dict[str, int]:
        with self._reachable:
            members = self._client.smembers(self._views_key)
            names = sorted(v.decode() if isinstance(v, bytes) else v for v in members)
            counts = self._client.mget([self._count_key(v) for v in names]) if names else []
        return {v: int(c) for v, c in zip(names, counts, strict=True) if c and int(c) > 0}

    def close(self) -> None:
        with self._direct_lock:
            self._direct.disconnect()
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self._safe_url()!r}, prefix={self.prefix!r})"


class _Reachable:
    """`with` it around redis-py calls: their connection and timeout errors become
    StoreUnavailable. A class rather than a generator: it wraps every online read."""

    def __init__(self, errors: tuple[type[Exception], ...], url: str) -> None:
        self._errors = errors
        self._url = url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
    ) -> None:
        if isinstance(error, self._errors):
            raise self.unavailable(error) from error

    def unavailable(self, error: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"Redis at {self._url} is not reachable: {error}")


class _KeptConnection:
    """A redis-py connection used for one command only, `HMGET name e c w v`, once per row
    read. redis-py connects it (address, TLS, AUTH, SELECT and client name, all from the
    URL); the commands go out as prepared bytes in one write and hiredis parses the answers
    read from the socket, as a bare client would. For one row, redis-py's send and read on
    the same connection took about 15 µs more, a fifth of a round trip to a local Redis."""

    def __init__(self, connection: Any) -> None:
        import hiredis
        from redis.exceptions import ResponseError

        self._connection = connection
        self._hiredis = hiredis
        self._refused = ResponseError
        self._sock: Any = None
        self._reader: Any = None

    def hmget(self, names: Sequence[str]) -> list[list[bytes | None]]:
        """Each name's fields, all commands in one write and the answers in as few reads."""
        if self._sock is None:
            self._connection.connect()
            self._sock = self._connection._sock
            self._reader = self._hiredis.Reader()
        sock, reader = self._sock, self._reader
        sock.sendall(_hmget(names[0]) if len(names) == 1 else b"".join(map(_hmget, names)))
        answers: list[Any] = []
        while len(answers) < len(names):
            if (answer := reader.gets()) is not False:
                answers.append(answer)
                continue
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("Redis closed the connection")
            reader.feed(data)
        for answer in answers:
            if isinstance(answer, self._hiredis.ReplyError):
                raise self._refused(str(answer))  # as redis-py would (a key that is no hash)
        return answers

    def disconnect(self) -> None:
        self._sock = self._reader = None
        self._connection.disconnect()


def _hmget(name: str) -> bytes:
    key = name.encode()
    return b"%s$%d\r\n%s\r\n%s" % (_HMGET_HEAD, len(key), key, _HMGET_TAIL)


def _record(fields: list[bytes | None]) -> OnlineRecord | None:
    event, created, written, values = fields
    if event is None or values is None or written is None:
        return None
    created_ms = int(created) if created else None
    return OnlineRecord(decode_values(values), int(event), created_ms, int(written))


def _without_prefix(url: str) -> tuple[str, str | None]:
    """`url` without its `prefix=` query parameter (one of ours, not redis-py's), and it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    named = [value for name, value in query if name == "prefix"]
    if not named:
        return url, None
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return parts._replace(query=rest).geturl(), named[-1]


def _glob_escape(text: str) -> str:
    """`text` matched literally in a SCAN pattern."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
