"""The metadata database: engine set-up, migrations on open, and safe transactions.

SQLite runs in WAL mode with a busy timeout and foreign keys on; every write
transaction starts with `BEGIN IMMEDIATE` so that concurrent writers queue on the
lock instead of failing with "database is locked" when a read transaction tries to
upgrade. Writes are retried on the transient errors both databases can raise under
contention (a locked SQLite file, a PostgreSQL serialization failure or deadlock).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from modelyard._sqlite import enter_wal
from modelyard.errors import InvalidInput, SchemaTooNew, StoreUnavailable
from modelyard.store import _tables

T = TypeVar("T")

# Every schema revision this release knows, oldest first; the last one is the head.
# A test checks this against the Alembic scripts.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006")
HEAD = REVISIONS[-1]

_WRITE = "modelyard_write"
_MIGRATION_LOCK_ID = 0x6D6F64656C  # PostgreSQL advisory lock key for migrations
_RETRIES = 20


class MetadataStore:
    """One metadata database, migrated to this release's schema when opened."""

    def __init__(self, url: str, *, busy_timeout_s: float = 60.0) -> None:
        self.url = url
        self.engine = _create_engine(url, busy_timeout_s)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(**{_WRITE: True})
        try:
            _migrate(self)
        except Exception:
            self.engine.dispose()
            raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a plain (deferred) transaction, for consistent reads."""
        with self.engine.connect() as conn:
            yield conn

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction, committed on return, retried on contention.

        `work` may run more than once, so it must not have effects outside the database.
        """
        for attempt in range(_RETRIES):
            try:
                with self._writer.begin() as conn:
                    return work(conn)
            except (OperationalError, DBAPIError) as exc:
                if attempt == _RETRIES - 1 or not (
                    exc.connection_invalidated or _is_transient(exc)
                ):
                    raise
                time.sleep(min(0.5, 0.005 * 2**attempt) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    def insert(self, table: Table) -> Any:
        """A dialect insert of `table` offering `on_conflict_do_nothing/do_update`."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def schema_revision(self) -> str | None:
        """The revision recorded in the database (None for an empty database)."""
        with self.read() as conn:
            return _current_revision(conn)

    def referenced_digests(self) -> set[str]:
        """Every artifact digest some row refers to: what garbage collection keeps."""
        digests: set[str] = set()
        with self.read() as conn:
            for table, column in _tables.BLOB_REFERENCES:
                col = table.c[column]
                digests.update(conn.scalars(select(col).where(col.is_not(None)).distinct()))
        return digests

    def close(self) -> None:
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"MetadataStore({self.display_url!r})"


def _create_engine(url: str, busy_timeout_s: float) -> Engine:
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"not a database URL: {url!r} ({exc})") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database, busy_timeout_s)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            # No pre-ping (a round trip per checkout); `write` retries on a dropped connection.
            return create_engine(parsed, pool_size=5, max_overflow=10, pool_recycle=1800)
        except ModuleNotFoundError as exc:
            raise StoreUnavailable(
                f"PostgreSQL needs the driver: pip install 'modelyard[postgres]' ({exc})"
            ) from exc
    raise InvalidInput(
        f"unsupported metadata database {backend!r} in {url!r}: use sqlite:///path "
        "or postgresql+psycopg://user@host/db"
    )


def _sqlite_engine(url: str, database: str | None, busy_timeout_s: float) -> Engine:
    in_memory = not database or database == ":memory:"
    if in_memory:
        raise InvalidInput(
            "an in-memory SQLite database cannot be shared between connections; "
            "use a file: sqlite:///path/to/modelyard.db"
        )
    assert database is not None
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        enter_wal(cursor, busy_timeout_s)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        # Straight on the driver: this runs for every transaction.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _is_transient(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    if "database is locked" in message or "database is busy" in message:
        return True
    code = getattr(exc.orig, "sqlstate", None)
    # serialization_failure, deadlock_detected
    return code in {"40001", "40P01"}


def _current_revision(conn: Connection) -> str | None:
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _migrate(store: MetadataStore) -> None:
    """Bring the database to HEAD; refuse a database from a newer release."""
    try:
        revision = store.schema_revision()
    except OperationalError as exc:
        raise StoreUnavailable(f"cannot open the metadata database {store!r}: {exc.orig}") from exc
    _check_known(revision)
    if revision == HEAD:
        return

    def upgrade(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
        current = _current_revision(conn)  # another process may have migrated meanwhile
        _check_known(current)
        if current != HEAD:
            _run_alembic(conn)

    store.write(upgrade)


def _check_known(revision: str | None) -> None:
    if revision is not None and revision not in REVISIONS:
        raise SchemaTooNew(
            f"the metadata database has schema revision {revision!r}, which this modelyard "
            f"does not know (it knows up to {HEAD!r}): it was written by a newer release. "
            "Upgrade modelyard (pip install -U modelyard) to open it."
        )


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
