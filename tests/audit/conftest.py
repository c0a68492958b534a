"""Helpers for the audit tests: a way to tamper with the stored trail, as an attacker would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection

from audit.models import AuditDigest, AuditDigestHead, AuditEvent, AuditStreamHead, AuditTombstone

TRIGGER = "audit_event_append_only"
TABLE = AuditEvent._meta.db_table
TABLES = {
    "table": TABLE,
    "heads": AuditStreamHead._meta.db_table,
    "digests": AuditDigest._meta.db_table,
    "digest_heads": AuditDigestHead._meta.db_table,
    "tombstones": AuditTombstone._meta.db_table,
}
PROTECTED = (TABLE, AuditDigest._meta.db_table, AuditDigestHead._meta.db_table,
             AuditTombstone._meta.db_table)  # fmt: skip

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only"
)


def tamper(sql: str, params: Sequence[Any] = ()) -> None:
    """Run raw SQL against the audit tables, with their append-only triggers off if any.

    `{table}` in `sql` is the events table, `{heads}` the stream heads, `{digests}` and
    `{digest_heads}` the digests' tables, `{tombstones}` retention's; `{json}` is a
    JSON-typed placeholder.
    """
    json_placeholder = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    statement = sql.format(json=json_placeholder, **TABLES)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in PROTECTED:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(statement, params)
        if connection.vendor == "postgresql":
            for table in PROTECTED:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


@pytest.fixture
def allow_audit_truncate() -> None:
    """Transactional tests end by flushing (TRUNCATE) every table; let that through."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET bulwark.audit_allow_truncate = 'on'")
