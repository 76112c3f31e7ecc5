"""Fixtures of the feature store tests: a Redis for tests, and an online store on SQLite and
on Redis (each test under its own key prefix, its keys deleted afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.features._online import OnlineStore
from modelyard.features._online_redis import RedisOnlineStore
from modelyard.features._online_sqlite import SqliteOnlineStore

from conftest import service_missing

REDIS_URL = os.environ.get("MODELYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a reachable Redis for tests (skipped locally, failed in CI, if none)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_URL}", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone; every key under it is deleted afterwards."""
    import redis

    prefix = f"modelyard-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        names = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(names), 1000):
            client.delete(*names[start : start + 1000])
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "redis"])
def online_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    """An empty online store, on SQLite and on Redis."""
    store: OnlineStore
    if request.param == "sqlite":
        store = SqliteOnlineStore(tmp_path / "online.db")
    else:
        url: str = request.getfixturevalue("redis_url")
        store = RedisOnlineStore(url, prefix=request.getfixturevalue("redis_prefix"))
    yield store
    store.close()
