"""Statements compiled once and run straight on the DB-API cursor.

The hot paths of tracking (logging a metric, creating a run) run a few tiny
statements per call; building and compiling them through SQLAlchemy each time costs
more than SQLite takes to run them. A `Prepared` statement is compiled once for the
engine's dialect (so the SQL and parameter style are the dialect's own) and executed
on the cursor of the connection inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self._names: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        # Literal values in the statement (e.g. `lifecycle == 'active'`) are binds too.
        self._defaults: dict[str, Any] = dict(compiled.params)

    def _params(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = {**self._defaults, **values}
        if self._names is None:
            return merged
        return tuple(merged[name] for name in self._names)

    def execute(self, conn: Connection, values: Mapping[str, Any] | None = None) -> Any:
        """Run once; returns the DB-API cursor (for `fetchone`, `rowcount`)."""
        cursor = conn.connection.cursor()
        cursor.execute(self.sql, self._params(values or {}))
        return cursor

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run once per row; returns the number of rows the statements changed."""
        if not rows:
            return 0
        if len(rows) == 1:  # psycopg runs executemany as a pipeline: slower for one row
            cursor = self.execute(conn, rows[0])
        else:
            cursor = conn.connection.cursor()
            cursor.executemany(self.sql, cast(Any, [self._params(row) for row in rows]))
        changed: int = cursor.rowcount
        cursor.close()
        return changed


def insert_values(table: Table, columns: Sequence[str]) -> Any:
    """`INSERT INTO table (columns) VALUES (:column, …)` with one bind per column."""
    return insert(table).values({name: bindparam(name) for name in columns})
