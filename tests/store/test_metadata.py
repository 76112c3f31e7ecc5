"""The metadata database: migrations on open, schema checks, safe concurrent opening."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from _locks import write_lock_held
from modelyard.errors import InvalidInput, SchemaTooNew, StoreUnavailable
from modelyard.store import HEAD, REVISIONS, MetadataStore
from modelyard.store._tables import ArtifactRow, Base

from _workers import open_store

MIGRATIONS = Path(__file__).parents[2] / "src" / "modelyard" / "store" / "migrations"


def test_opening_applies_every_migration(db_url: str) -> None:
    store = MetadataStore(db_url)
    try:
        assert store.schema_revision() == HEAD
        tables = set(inspect(store.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        store.close()


def test_migrations_produce_exactly_the_declared_schema(db_url: str) -> None:
    store = MetadataStore(db_url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn)
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        store.close()


def test_known_revisions_match_the_migration_scripts() -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    chain = [rev.revision for rev in reversed(list(scripts.walk_revisions()))]
    assert tuple(chain) == REVISIONS
    assert scripts.get_current_head() == HEAD


def test_reopening_keeps_data(db_url: str) -> None:
    store = MetadataStore(db_url)
    store.write(
        lambda conn: conn.execute(
            text(
                "INSERT INTO experiments (name, lifecycle, created_at) VALUES ('kept', 'active', 1)"
            )
        )
    )
    store.close()
    again = MetadataStore(db_url)
    try:
        with again.read() as conn:
            assert conn.execute(text("SELECT name FROM experiments")).scalar() == "kept"
    finally:
        again.close()


def test_a_database_from_a_newer_release_is_refused(db_url: str) -> None:
    store = MetadataStore(db_url)
    store.write(lambda conn: conn.execute(text("UPDATE alembic_version SET version_num = '9999'")))
    store.close()
    with pytest.raises(SchemaTooNew, match=r"'9999'.*newer release.*Upgrade modelyard"):
        MetadataStore(db_url)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with store.read() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    finally:
        store.close()


def test_opening_waits_for_another_writer_holding_a_new_sqlite_file(tmp_path: Path) -> None:
    # SQLite refuses the switch to WAL at once, without its busy handler, while another
    # connection holds the write lock: the open must wait for the lock, not fail.
    path = tmp_path / "x.db"
    with write_lock_held(path, 0.3):
        store = MetadataStore(f"sqlite:///{path}")
    try:
        assert store.schema_revision() == HEAD
    finally:
        store.close()


def test_unusable_urls_are_rejected_clearly(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="in-memory"):
        MetadataStore("sqlite://")
    with pytest.raises(InvalidInput, match="unsupported"):
        MetadataStore("mysql://root@127.0.0.1/test")
    with pytest.raises(InvalidInput, match="not a database URL"):
        MetadataStore("::nonsense::")


def test_unreachable_database_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="cannot open"):
        MetadataStore("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_referenced_digests_lists_artifact_blobs(db_url: str) -> None:
    store = MetadataStore(db_url)
    try:

        def seed(conn: object) -> None:
            run = "r" * 32
            for sql in (
                "INSERT INTO experiments (id, name, lifecycle, created_at) "
                "VALUES (1, 'e', 'active', 1)",
                'INSERT INTO runs (id, experiment_id, name, status, lifecycle, "user", '
                "start_time) "
                f"VALUES ('{run}', 1, 'n', 'running', 'active', 'u', 1)",
            ):
                conn.execute(text(sql))  # type: ignore[attr-defined]
            conn.execute(
                ArtifactRow.__table__.insert(),
                [  # type: ignore[attr-defined]
                    {"run_id": run, "path": p, "digest": d, "size": 1, "created_at": 1}
                    for p, d in (("a", "a" * 64), ("b", "b" * 64), ("c", "a" * 64))
                ],
            )

        store.write(seed)
        assert store.referenced_digests() == {"a" * 64, "b" * 64}
    finally:
        store.close()


def test_many_processes_opening_a_new_database_migrate_it_once(db_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        revisions = pool.map(open_store, [db_url] * 6)
    assert revisions == [HEAD] * 6
