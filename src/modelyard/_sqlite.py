"""SQLite set-up shared by the metadata database and the SQLite online store."""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any


def enter_wal(cursor: Any, busy_timeout_s: float) -> None:
    """Switch the file under `cursor` to WAL, waiting out other connections doing the same.

    The switch upgrades a shared lock to an exclusive one; when another connection
    holds a lock that could deadlock with it, SQLite answers "database is locked" at
    once instead of calling the busy handler, so the wait is ours.
    """
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if "locked" not in message and "busy" not in message:
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(0.2, delay * 2)
