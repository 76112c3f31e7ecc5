"""The online store on SQLite: the default, one file, no server.

Newest-wins is one upsert whose update only fires when the incoming (event, created) pair is
strictly greater than the stored one, so SQLite's own locking makes it atomic across
threads and processes. Each thread has its own connection (WAL lets readers run beside the
writer); writes take the lock up front (`BEGIN IMMEDIATE`) and wait for it (busy timeout).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelyard._sqlite import enter_wal
from modelyard.errors import StoreUnavailable
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

_READ_CHUNK = 500
_BUSY_TIMEOUT_S = 30.0
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS online_features (
        view TEXT NOT NULL,
        key TEXT NOT NULL,
        event_ms INTEGER NOT NULL,
        created_ms INTEGER,
        written_ms INTEGER NOT NULL,
        "values" BLOB NOT NULL,
        PRIMARY KEY (view, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS online_watermarks (
        view TEXT PRIMARY KEY,
        ms INTEGER NOT NULL
    )""",
)
_UPSERT = """
INSERT INTO online_features (view, key, event_ms, created_ms, written_ms, "values")
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (view, key) DO UPDATE SET
    event_ms = excluded.event_ms,
    created_ms = excluded.created_ms,
    written_ms = excluded.written_ms,
    "values" = excluded."values"
WHERE (excluded.event_ms, coalesce(excluded.created_ms, -1))
    > (online_features.event_ms, coalesce(online_features.created_ms, -1))
"""


class SqliteOnlineStore:
    """Online values in the SQLite file at `path` (created with its tables if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        with self._transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise StoreUnavailable(f"the online store {self.path} is closed")
            conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_S,
                isolation_level=None,  # transactions are begun explicitly
                check_same_thread=False,  # so that close() can close every thread's connection
            )
            enter_wal(conn, _BUSY_TIMEOUT_S)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        check_identifier("feature view", view)
        newest = newest_per_key(rows)
        if not newest:
            return 0
        written = now_ms()
        params = [
            (view, key, row.event_ms, row.created_ms, written, encode_values(row.values))
            for key, row in newest.items()
        ]
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(_UPSERT, params)
            # total_changes counts inserts and the updates whose WHERE held, nothing else
            return conn.total_changes - before

    def read_views(
        self, reads: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]
    ) -> list[list[OnlineRecord | None]]:
        return [self.read(view, keys) for view, keys in reads]

    def read(self, view: str, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRecord | None]:
        check_identifier("feature view", view)
        encoded = [encode_key(key) for key in keys]
        found: dict[str, OnlineRecord] = {}
        conn = self._connection()
        unique = list(dict.fromkeys(encoded))
        for start in range(0, len(unique), _READ_CHUNK):
            chunk = unique[start : start + _READ_CHUNK]
            marks = ", ".join("?" * len(chunk))
            cursor = conn.execute(
                'SELECT key, event_ms, created_ms, written_ms, "values" FROM online_features '
                f"WHERE view = ? AND key IN ({marks})",
                [view, *chunk],
            )
            for key, event, created, written, values in cursor:
                found[key] = OnlineRecord(decode_values(values), event, created, written)
        return [found.get(key) for key in encoded]

    def read_one(self, view: str, key: tuple[Any, ...]) -> OnlineRecord | None:
        return self.read(view, [key])[0]

    def set_watermark(self, view: str, ms: int) -> None:
        check_identifier("feature view", view)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO online_watermarks (view, ms) VALUES (?, ?) "
                "ON CONFLICT (view) DO UPDATE SET ms = excluded.ms",
                (view, int(ms)),
            )

    def watermark(self, view: str) -> int | None:
        check_identifier("feature view", view)
        row = (
            self._connection()
            .execute("SELECT ms FROM online_watermarks WHERE view = ?", (view,))
            .fetchone()
        )
        return int(row[0]) if row is not None else None

    def delete_view(self, view: str) -> int:
        check_identifier("feature view", view)
        with self._transaction() as conn:
            deleted = conn.execute("DELETE FROM online_features WHERE view = ?", (view,)).rowcount
            conn.execute("DELETE FROM online_watermarks WHERE view = ?", (view,))
        return int(deleted)

    def views(self) -> dict[str, int]:
        cursor = self._connection().execute(
            "SELECT view, count(*) FROM online_features GROUP BY view ORDER BY view"
        )
        return {view: int(count) for view, count in cursor}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({str(self.path)!r})"
