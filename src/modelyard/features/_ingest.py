"""Streaming ingestion: feature rows from Redis Streams or NATS JetStream into the online store.

At least once, with idempotent writes: a batch is acknowledged only after its rows are
written (and its bad messages dead-lettered), so a crash redelivers it; the online store
keeps the newer of what it has and what it gets, so a redelivered, replayed or late message
never overwrites a newer value. A message that cannot be used — not JSON, not an object, a
missing column, a value of the wrong type, a failing transform — is kept whole in the
dead-letter table with the reason, and acknowledged: nothing is lost, nothing blocks.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import insert, select

from modelyard.errors import InvalidInput, ModelyardError
from modelyard.store._tables import FeatureDeadLetterRow, table_of
from modelyard.tracking._entities import now_ms

if TYPE_CHECKING:
    from modelyard.features._definitions import FeatureView
    from modelyard.features._store import FeatureStore
    from modelyard.store import MetadataStore

D = table_of(FeatureDeadLetterRow)


@dataclass(frozen=True)
class Message:
    """One streamed message: where it came from (for the dead-letter record) and its bytes."""

    id: str
    payload: bytes
    handle: Any = field(default=None, compare=False, repr=False)  # what the source acks


@dataclass(frozen=True)
class DeadLetter:
    id: int
    view: str
    source: str
    payload: bytes
    reason: str
    at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "view": self.view,
            "source": self.source,
            "payload": self.payload.decode(errors="replace"),
            "reason": self.reason,
            "at": self.at,
        }


@dataclass
class IngestStats:
    """Counts of one ingestion: messages received, rows that replaced an online value, rows
    older than what was stored (kept out), messages dead-lettered."""

    received: int = 0
    written: int = 0
    stale: int = 0
    dead: int = 0

    def add(self, other: IngestStats) -> None:
        self.received += other.received
        self.written += other.written
        self.stale += other.stale
        self.dead += other.dead

    def to_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "written": self.written,
            "stale": self.stale,
            "dead": self.dead,
        }


class DeadLetters:
    """The dead-letter table of one metadata database."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def add(self, view: str, failures: Sequence[tuple[Message, str]]) -> None:
        if not failures:
            return
        at = now_ms()
        rows = [
            {"view": view, "source": m.id[:512], "payload": m.payload, "reason": why, "at": at}
            for m, why in failures
        ]
        self.metadata.write(lambda conn: conn.execute(insert(D), rows))

    def list(self, view: str | None = None, *, limit: int = 100) -> list[DeadLetter]:
        """The latest dead letters (of `view`), newest first."""
        query = select(D).order_by(D.c.id.desc()).limit(limit)
        if view is not None:
            query = query.where(D.c.view == view)
        with self.metadata.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [DeadLetter(**dict(row)) for row in rows]


def ingest_batch(
    store: FeatureStore, view: FeatureView, messages: Sequence[Message], dead: DeadLetters
) -> IngestStats:
    """Write the usable rows of `messages` to the online store, dead-letter the rest."""
    parsed: list[tuple[Message, dict[str, Any]]] = []
    failures: list[tuple[Message, str]] = []
    for message in messages:
        try:
            row = orjson.loads(message.payload)
        except orjson.JSONDecodeError as exc:
            failures.append((message, f"not JSON: {exc}"))
            continue
        if not isinstance(row, dict):
            failures.append((message, f"not a JSON object but {type(row).__name__}"))
            continue
        parsed.append((message, row))
    rows = _rows(view, parsed, failures)
    written = store.online.write(view.name, rows) if rows else 0
    dead.add(view.name, failures)
    return IngestStats(len(messages), written, len(rows) - written, len(failures))


def _rows(
    view: FeatureView,
    parsed: Sequence[tuple[Message, dict[str, Any]]],
    failures: list[tuple[Message, str]],
) -> list[Any]:
    """Online rows of the parsed messages: all at once, else one by one to find the culprits."""
    import pandas as pd

    from modelyard.features._rows import online_rows

    if not parsed:
        return []
    try:
        return online_rows(view, pd.DataFrame([row for _, row in parsed]))
    except Exception:  # found and recorded message by message below
        pass
    made: list[Any] = []
    for message, row in parsed:
        try:
            made += online_rows(view, pd.DataFrame([row]))
        except ModelyardError as exc:
            failures.append((message, exc.message))
        except Exception as exc:  # a transform that raised
            failures.append((message, f"{type(exc).__name__}: {exc}"))
    return made


# -- sources ---------------------------------------------------------------------------------


class StreamSource(Protocol):
    """Where messages come from: read a batch (waiting at most `block_ms`), ack it."""

    def read(self, count: int, block_ms: int) -> list[Message]: ...

    def ack(self, messages: Sequence[Message]) -> None: ...

    def close(self) -> None: ...


class RedisStreamSource:
    """A Redis stream read through a consumer group: what this consumer was given and did not
    ack (after a crash) comes first, then new entries. The payload is the entry's `data` field
    (or the whole entry as JSON when it has no such field)."""

    def __init__(
        self, url: str, stream: str, *, group: str = "modelyard", consumer: str | None = None
    ) -> None:
        import redis

        self.stream, self.group = stream, group
        self.consumer = consumer or f"{socket.gethostname()}-{threading.get_ident()}"
        self._redis = redis.Redis.from_url(url)
        try:
            self._redis.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._pending = True  # first deliver what this consumer left unacked

    def read(self, count: int, block_ms: int) -> list[Message]:
        if self._pending:
            found = self._read("0", count, None)
            if found:
                return found
            self._pending = False
        return self._read(">", count, block_ms)

    def _read(self, start: str, count: int, block_ms: int | None) -> list[Message]:
        answer: Any = self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block_ms
        )
        messages = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                payload = fields.get(b"data")
                if payload is None:
                    payload = orjson.dumps({_text(k): _text(v) for k, v in fields.items()})
                messages.append(Message(f"redis:{self.stream}/{ident}", payload, ident))
        return messages

    def ack(self, messages: Sequence[Message]) -> None:
        if messages:
            self._redis.xack(self.stream, self.group, *[m.handle for m in messages])

    def close(self) -> None:
        self._redis.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NatsSource:
    """A NATS JetStream subject read through a durable pull consumer: a message not acked
    within the consumer's ack wait is redelivered."""

    def __init__(self, url: str, stream: str, subject: str, *, durable: str = "modelyard") -> None:
        self.stream, self.subject = stream, subject
        self._loop = asyncio.new_event_loop()
        self._nc: Any = None
        try:
            self._subscription = self._run(self._connect(url, durable))
        except Exception:
            self.close()
            raise

    async def _connect(self, url: str, durable: str) -> Any:
        import nats

        self._nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)
        jetstream = self._nc.jetstream()
        return await jetstream.pull_subscribe(self.subject, durable=durable, stream=self.stream)

    def _run(self, work: Any) -> Any:
        return self._loop.run_until_complete(work)

    def read(self, count: int, block_ms: int) -> list[Message]:
        import nats.errors

        try:
            found = self._run(self._subscription.fetch(count, timeout=max(block_ms, 1) / 1000))
        except nats.errors.TimeoutError:
            return []
        return [
            Message(f"nats:{self.stream}/{m.metadata.sequence.stream}", m.data, m) for m in found
        ]

    def ack(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._run(message.handle.ack())

    def close(self) -> None:
        if self._nc is not None:
            self._run(self._nc.close())
        self._loop.close()


def ingest(
    store: FeatureStore,
    view_name: str,
    source: StreamSource,
    dead: DeadLetters,
    *,
    batch: int = 500,
    block_ms: int = 1000,
    max_messages: int | None = None,
    idle_stop_s: float | None = None,
    stop: threading.Event | None = None,
) -> IngestStats:
    """Consume `source` into `view_name` until `stop` is set, `max_messages` were handled,
    or nothing came for `idle_stop_s`."""
    if batch < 1 or block_ms < 0:
        raise InvalidInput("batch must be at least 1 and block_ms at least 0")
    view = store.view(view_name)
    if not view.online:
        raise InvalidInput(f"feature view {view_name!r} is offline only (online=False)")
    total = IngestStats()
    idle_since = time.monotonic()
    while not (stop is not None and stop.is_set()):
        if max_messages is not None and total.received >= max_messages:
            break
        wanted = batch if max_messages is None else min(batch, max_messages - total.received)
        messages = source.read(wanted, block_ms)
        if not messages:
            if idle_stop_s is not None and time.monotonic() - idle_since >= idle_stop_s:
                break
            continue
        idle_since = time.monotonic()
        total.add(ingest_batch(store, view, messages, dead))
        source.ack(messages)  # only once written and dead-lettered: at least once
    return total


def open_source(kind: str, url: str, name: str, subject: str | None = None) -> StreamSource:
    """`redis` (a stream named `name`) or `nats` (JetStream stream `name`, `subject`)."""
    if kind == "redis":
        return RedisStreamSource(url, name)
    if kind == "nats":
        return NatsSource(url, name, subject or name)
    raise InvalidInput(f"stream kind must be redis or nats, not {kind!r}")


def ingest_from(
    store: FeatureStore,
    view: str,
    *,
    redis_stream: str | None = None,
    nats_stream: str | None = None,
    subject: str | None = None,
    url: str | None = None,
    redis_url: str | None = None,
    batch: int = 500,
    max_messages: int | None = None,
    idle_stop_s: float | None = None,
) -> IngestStats:
    """`ingest` from a Redis stream (at `url`, else `redis_url`) or a NATS JetStream stream
    (at `url`, else the local NATS), the source opened and closed here."""
    if (redis_stream is None) == (nats_stream is None):
        raise InvalidInput("give a Redis stream or a NATS stream to read (one)")
    if redis_stream is not None:
        address = url or redis_url
        if not address:
            raise InvalidInput("a Redis stream needs a URL (or the redis_url setting)")
        source = open_source("redis", address, redis_stream)
    else:
        assert nats_stream is not None
        source = open_source("nats", url or "nats://127.0.0.1:4222", nats_stream, subject)
    try:
        return ingest(
            store,
            view,
            source,
            DeadLetters(store.registry.metadata),
            batch=batch,
            max_messages=max_messages,
            idle_stop_s=idle_stop_s,
        )
    finally:
        source.close()
