"""Helpers for the audit tests: a way to tamper with stored events, as an attacker would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditEvent

TRIGGER = "audit_event_append_only"
TABLE = AuditEvent._meta.db_table

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only"
)


def tamper(sql: str, params: Sequence[Any] = ()) -> None:
    """Run raw SQL against the events table, with the append-only trigger off if there is one.

    `{table}` in `sql` is the events table; `{json}` is a JSON-typed placeholder.
    """
    json_placeholder = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    statement = sql.format(table=TABLE, json=json_placeholder)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {TRIGGER}")
        cursor.execute(statement, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {TRIGGER}")


@pytest.fixture
def allow_audit_truncate() -> None:
    """Transactional tests end by flushing (TRUNCATE) every table; let that through."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET bulwark.audit_allow_truncate = 'on'")
