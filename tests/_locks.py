"""Test helpers for SQLite files."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def write_lock_held(path: Path, seconds: float) -> Iterator[None]:
    """Hold the write lock of a new (not yet WAL) SQLite file for `seconds` from entry."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE IF NOT EXISTS held (x)")
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(seconds, lambda: other.execute("COMMIT"))
    release.start()
    try:
        yield
    finally:
        release.join()
        other.close()
