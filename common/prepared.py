"""A cursor for the statements every step runs: prepared once per connection on PostgreSQL.

On this class of machine PostgreSQL spends more time planning the engine's small
statements than running them (a quarter of a millisecond of CPU for a one-row UPDATE).
Django's psycopg cursors bind parameters on the client, so nothing is ever prepared;
these statements instead go through a server-side-binding psycopg cursor with
`prepare=True`: parsed and planned once per connection, then only executed. Their text
must be fixed (arrays, not variable VALUES or IN lists), so that one plan serves every
call. Everything else keeps Django's cursor; SQLite always does.

Poolers in transaction mode (PgBouncer before 1.21) cannot carry prepared statements
between clients: BULWARK_PREPARED_STATEMENTS=0 turns preparing off.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections


def on_postgresql() -> bool:
    """Whether the database is PostgreSQL (fixed for the life of a process, and asked on
    every statement: reading it through Django's connection proxy costs more)."""
    global _postgresql
    if _postgresql is None:
        _postgresql = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"
    return _postgresql


_postgresql: bool | None = None


@contextmanager
def hot_cursor() -> Iterator[Any]:
    """A cursor whose `execute(sql, params)` prepares `sql` on PostgreSQL."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each attribute of the proxy is a lookup
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            yield cursor
        return
    import psycopg

    db.ensure_connection()
    db.validate_no_broken_transaction()
    # One psycopg cursor per connection, reused: each use executes and reads its results
    # before the next begins (connections, and so cursors, belong to one thread).
    raw = db.connection
    cached = getattr(db, "_bulwark_hot_cursor", None)
    if cached is None or cached[0] is not raw or cached[1].closed:
        cached = (raw, psycopg.Cursor(raw))
        db._bulwark_hot_cursor = cached  # type: ignore[attr-defined]
    yield _Prepared(db, cached[1])


class _Prepared:
    """A psycopg cursor that prepares what it runs, with what Django's cursor wrapper
    gives every query: error translation, execute wrappers and, when queries are being
    logged (DEBUG, assertNumQueries), the query log."""

    def __init__(self, db: Any, cursor: Any) -> None:
        self._db = db
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        db = self._db
        if not db.execute_wrappers and not db.queries_logged:
            self._execute(sql, params, False, None)
            return
        executor: Any = self._execute
        for wrapper in reversed(db.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        context = {"connection": db, "cursor": self}
        started = time.monotonic()
        try:
            executor(sql, params, False, context)
        finally:
            if db.queries_logged:
                took = time.monotonic() - started
                db.queries_log.append({"sql": f"{sql} -- {params!r}", "time": f"{took:.3f}"})

    def _execute(self, sql: str, params: Sequence[Any], many: bool, context: Any) -> None:
        with self._db.wrap_database_errors:
            self._cursor.execute(sql, params, prepare=settings.BULWARK_PREPARED_STATEMENTS)

    def fetchone(self) -> Any:
        with self._db.wrap_database_errors:
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._db.wrap_database_errors:
            return list(self._cursor.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


def recordset(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> tuple[str, str]:
    """Rows for a prepared statement as one JSON parameter, on PostgreSQL.

    `columns` are (name, SQL type) pairs. Returns the FROM item
    `jsonb_to_recordset(%s::jsonb) AS v(<name> <type>, …)` and its parameter: the
    statement's text then depends on the columns only, and the rows are encoded by one
    json.dumps rather than adapted value by value. JSON columns embed their values as they
    are; datetimes go as ISO 8601; JSON null becomes SQL NULL, as None does.
    """
    names = [name for name, _ in columns]
    definition = ", ".join(f"{name} {kind}" for name, kind in columns)
    records = [dict(zip(names, row, strict=True)) for row in rows]
    return f"jsonb_to_recordset(%s::jsonb) AS v({definition})", json.dumps(records, default=_iso)


_column_types: dict[tuple[type[Any], str], str] = {}


def column_type(model: type[Any], name: str) -> str:
    """The SQL type of a model field's column (cached: it never changes in a process)."""
    key = (model, name)
    if key not in _column_types:
        _column_types[key] = str(model._meta.get_field(name).db_type(connection))
    return _column_types[key]


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
