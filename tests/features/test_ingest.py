"""Streaming ingestion from real Redis Streams and NATS JetStream: rows reach the online
store, a replayed or out-of-order message never overwrites a newer value, a malformed one
lands in the dead letters with the reason, and what was read but not acknowledged before a
crash is delivered again."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest

from modelyard.errors import InvalidInput, NotFound
from modelyard.features import Entity, FeatureRegistry, FeatureStore, FeatureView, Field
from modelyard.features._ingest import (
    DeadLetters,
    Message,
    NatsSource,
    RedisStreamSource,
    ingest,
    ingest_batch,
)
from modelyard.features._online_sqlite import SqliteOnlineStore
from modelyard.store import MetadataStore

from conftest import service_missing

NATS_URL = os.environ.get("MODELYARD_TEST_NATS_URL", "nats://127.0.0.1:4222")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    metadata = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    made = FeatureStore(FeatureRegistry(metadata), SqliteOnlineStore(tmp_path / "online.db"))
    driver = Entity("driver", ["driver_id"])
    stats = FeatureView(
        "driver_stats",
        entities=[driver],
        source=pd.DataFrame(),
        timestamp_field="event_ts",
        created_timestamp_field="created",
        features=[Field("trips", "int64"), Field("rating", "float64")],
    )
    made.apply([driver, stats])
    yield made
    made.close()
    metadata.engine.dispose()


def row(driver: int, hours: float, trips: int, **more: object) -> bytes:
    at = (T0 + timedelta(hours=hours)).isoformat()
    return orjson.dumps(
        {"driver_id": driver, "event_ts": at, "trips": trips, "rating": 4.0, **more}
    )


# The stream, in arrival order: new values, then a replay, a late (older) row, a row with
# the same event time but an older created time, and three messages that cannot be used.
STREAM = [
    row(1, 2, 20),
    row(2, 1, 10, created=(T0 + timedelta(hours=1, minutes=5)).isoformat()),
    row(1, 2, 20),  # replayed
    row(1, 1, 11),  # late: older than what is stored
    row(2, 1, 12, created=T0.isoformat()),  # same event time, created earlier
    b"{not json",
    row(3, 1, "many"),  # type: ignore[arg-type]  # a string for an int64 feature
    orjson.dumps({"driver_id": 4, "trips": 1}),  # no event time
]


def check_outcome(store: FeatureStore, stats: dict[str, int]) -> None:
    assert stats == {"received": 8, "written": 2, "stale": 3, "dead": 3}
    records = store.online.read("driver_stats", [(1,), (2,), (3,), (4,)])
    assert [r.values["trips"] if r else None for r in records] == [20, 10, None, None]
    dead = DeadLetters(store.registry.metadata).list("driver_stats")
    reasons = sorted(d.reason for d in dead)
    assert len(reasons) == 3, reasons
    assert reasons[0].startswith("feature 'trips' is int64, but got 'many'")
    assert reasons[1].startswith("not JSON")
    assert reasons[2].endswith("lack the columns ['event_ts', 'rating']")
    assert b"{not json" in [d.payload for d in dead]  # kept whole


def test_a_batch_keeps_the_newest_values_and_dead_letters_the_rest(store: FeatureStore) -> None:
    messages = [Message(f"test/{i}", payload) for i, payload in enumerate(STREAM)]
    dead = DeadLetters(store.registry.metadata)
    view = store.view("driver_stats")
    stats = ingest_batch(store, view, messages, dead)
    check_outcome(store, stats.to_dict())


# -- Redis Streams -----------------------------------------------------------------------------


@pytest.fixture
def redis_stream(redis_url: str) -> Iterator[str]:
    import redis

    name = f"modelyard-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name)
    client.close()


def test_ingestion_from_a_redis_stream(
    store: FeatureStore, redis_url: str, redis_stream: str
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    for payload in STREAM:
        client.xadd(redis_stream, {"data": payload})
    source = RedisStreamSource(redis_url, redis_stream, consumer="worker")
    dead = DeadLetters(store.registry.metadata)
    try:
        stats = ingest(store, "driver_stats", source, dead, batch=3, idle_stop_s=0.2, block_ms=50)
    finally:
        source.close()
    check_outcome(store, stats.to_dict())
    pending = client.xpending(redis_stream, "modelyard")
    assert pending["pending"] == 0  # everything acknowledged
    client.close()


def test_what_was_read_but_not_acknowledged_is_delivered_again(
    store: FeatureStore, redis_url: str, redis_stream: str
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.xadd(redis_stream, {"data": row(5, 1, 50)})
    crashed = RedisStreamSource(redis_url, redis_stream, consumer="worker")
    assert len(crashed.read(10, 50)) == 1  # read, then the process dies before the ack
    crashed.close()
    assert store.online.read("driver_stats", [(5,)]) == [None]
    again = RedisStreamSource(redis_url, redis_stream, consumer="worker")
    dead = DeadLetters(store.registry.metadata)
    try:
        stats = ingest(store, "driver_stats", again, dead, idle_stop_s=0.1, block_ms=20)
    finally:
        again.close()
    assert stats.written == 1
    [record] = store.online.read("driver_stats", [(5,)])
    assert record is not None and record.values["trips"] == 50
    client.close()


# -- NATS JetStream ----------------------------------------------------------------------------


@pytest.fixture
def nats_stream() -> Iterator[tuple[str, str]]:
    """A fresh JetStream stream and its subject, deleted afterwards."""
    import nats

    name = f"modelyard_test_{uuid.uuid4().hex[:12]}"
    subject = f"{name}.rows"

    async def create() -> None:
        connection = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        await connection.jetstream().add_stream(name=name, subjects=[subject])
        await connection.close()

    async def delete() -> None:
        connection = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        await connection.jetstream().delete_stream(name)
        await connection.close()

    try:
        asyncio.run(create())
    except Exception as exc:  # no server, or no JetStream
        service_missing(f"NATS JetStream at {NATS_URL}", exc)
    yield name, subject
    asyncio.run(delete())


def publish(subject: str, payloads: list[bytes]) -> None:
    import nats

    async def send() -> None:
        connection = await nats.connect(NATS_URL, connect_timeout=3)
        jetstream = connection.jetstream()
        for payload in payloads:
            await jetstream.publish(subject, payload)
        await connection.close()

    asyncio.run(send())


def test_ingestion_from_nats_jetstream(store: FeatureStore, nats_stream: tuple[str, str]) -> None:
    name, subject = nats_stream
    publish(subject, STREAM)
    source = NatsSource(NATS_URL, name, subject)
    dead = DeadLetters(store.registry.metadata)
    try:
        stats = ingest(store, "driver_stats", source, dead, batch=3, idle_stop_s=0.3, block_ms=100)
    finally:
        source.close()
    check_outcome(store, stats.to_dict())
    [letter] = [d for d in dead.list("driver_stats") if d.payload == b"{not json"]
    assert letter.source.startswith(f"nats:{name}/")


def test_bad_ingestion_settings_are_refused(store: FeatureStore) -> None:
    from modelyard.features._ingest import open_source

    dead = DeadLetters(store.registry.metadata)
    with pytest.raises(InvalidInput, match="redis or nats"):
        open_source("kafka", "x", "y")
    with pytest.raises(NotFound):
        ingest(store, "ghost", _Empty(), dead, idle_stop_s=0)
    with pytest.raises(InvalidInput, match="batch"):
        ingest(store, "driver_stats", _Empty(), dead, batch=0)


class _Empty:
    def read(self, count: int, block_ms: int) -> list[Message]:
        return []

    def ack(self, messages: object) -> None:
        raise AssertionError("nothing to ack")

    def close(self) -> None:
        pass


def test_ingestion_from_the_cli_and_the_sdk(
    tmp_path: Path, redis_url: str, redis_stream: str
) -> None:
    import json

    import redis
    from typer.testing import CliRunner

    import modelyard as my
    from modelyard.cli._app import app

    module = tmp_path / "defs.py"
    module.write_text(
        "from modelyard.features import Entity, FeatureView, Field\n"
        "driver = Entity('driver', ['driver_id'])\n"
        "stats = FeatureView('driver_stats', entities=[driver], source='stats.parquet',\n"
        "                    timestamp_field='event_ts',\n"
        "                    features=[Field('trips', 'int64'), Field('rating')])\n"
    )
    home = tmp_path / "home"
    runner = CliRunner()

    def cli(*args: str) -> object:
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout

    cli("features", "apply", str(module))
    client = redis.Redis.from_url(redis_url)
    for payload in (row(1, 1, 5), b"[1, 2]"):
        client.xadd(redis_stream, {"data": payload})
    stats = cli(
        "features",
        "ingest",
        "driver_stats",
        "--redis-stream",
        redis_stream,
        "--url",
        redis_url,
        "--idle-stop",
        "0.2",
        "--json",
    )
    assert stats == {"received": 2, "written": 1, "stale": 0, "dead": 1}
    [letter] = cli("features", "dead-letters", "driver_stats", "--json")  # type: ignore[misc]
    assert letter["reason"] == "not a JSON object but list" and letter["payload"] == "[1, 2]"

    client.xadd(redis_stream, {"data": row(1, 2, 6)})
    # the stream's Redis, not the online store (SQLite in the home, as for the CLI above)
    my.configure(home=home, redis_url=redis_url, online_url=f"sqlite:///{home / 'online.db'}")
    try:
        found = my.features.ingest("driver_stats", redis_stream=redis_stream, idle_stop_s=0.2)
        assert found.to_dict() == {"received": 1, "written": 1, "stale": 0, "dead": 0}
        assert [d.reason for d in my.features.dead_letters()] == ["not a JSON object but list"]
        with pytest.raises(InvalidInput, match="one"):
            my.features.ingest("driver_stats")
    finally:
        my.configure(home=tmp_path / "unused")
    client.close()
