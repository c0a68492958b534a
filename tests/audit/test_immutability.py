"""Recorded audit events cannot be changed or deleted, through the ORM or (on PostgreSQL) SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from audit.events import record_event
from audit.models import AuditEvent, AuditImmutableError
from tests.audit.conftest import TABLE, on_postgresql


@pytest.fixture
def event(db: None) -> AuditEvent:
    return record_event(stream="run:1", kind="run.started", actor="user:bob", payload={"a": 1})


def test_saving_a_recorded_event_again_is_refused(event: AuditEvent) -> None:
    event.payload = {"a": 2}
    with pytest.raises(AuditImmutableError, match="append-only"):
        event.save()
    stored = AuditEvent.objects.get(pk=event.pk)
    with pytest.raises(AuditImmutableError):
        stored.save(update_fields=["payload"])
    assert AuditEvent.objects.get(pk=event.pk).payload == {"a": 1}


def test_deleting_a_recorded_event_is_refused(event: AuditEvent) -> None:
    with pytest.raises(AuditImmutableError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_queryset_update_is_refused(event: AuditEvent) -> None:
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(kind="run.cancelled")
    # bulk_update runs inside its own atomic block, so give it a savepoint to spoil.
    with pytest.raises(AuditImmutableError), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["kind"])
    assert AuditEvent.objects.get(pk=event.pk).kind == "run.started"


def test_queryset_delete_is_refused(event: AuditEvent) -> None:
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent._base_manager.filter(pk=event.pk).delete()
    assert AuditEvent.objects.count() == 1


@on_postgresql
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {table} SET kind = 'run.cancelled'",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_the_database_refuses_to_change_audit_events(event: AuditEvent, sql: str) -> None:
    with connection.cursor() as cursor:
        # The test suite's sessions allow TRUNCATE (to flush); this transaction must not.
        cursor.execute("SET LOCAL bulwark.audit_allow_truncate = 'off'")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(sql.format(table=TABLE))
    assert AuditEvent.objects.get(pk=event.pk).kind == "run.started"


@on_postgresql
def test_the_database_lets_stream_heads_move(event: AuditEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditstreamhead SET seq = seq WHERE stream = 'run:1'")
        assert cursor.rowcount == 1


@on_postgresql
def test_the_database_allows_truncate_only_to_a_session_that_asks(event: AuditEvent) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL bulwark.audit_allow_truncate = 'on'")
        cursor.execute(f"TRUNCATE {TABLE}")
        assert not AuditEvent.objects.exists()
        transaction.set_rollback(True)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@on_postgresql
def test_the_database_lets_retention_delete_events_and_nothing_else(event: AuditEvent) -> None:
    """Retention's transactions (audit.retention) may DELETE events, and only that."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL bulwark.audit_prune = 'on'")
        with pytest.raises(DatabaseError, match="append-only: UPDATE"), transaction.atomic():
            cursor.execute(f"UPDATE {TABLE} SET kind = 'run.cancelled'")  # noqa: S608
        with pytest.raises(DatabaseError, match="append-only: DELETE"), transaction.atomic():
            cursor.execute("DELETE FROM audit_auditdigest")
        with pytest.raises(DatabaseError, match="append-only: DELETE"), transaction.atomic():
            cursor.execute("DELETE FROM audit_audittombstone")
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
        assert cursor.rowcount == 1
        transaction.set_rollback(True)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@on_postgresql
@pytest.mark.parametrize(
    "sql", ["UPDATE audit_audittombstone SET reason = 'x'", "DELETE FROM audit_audittombstone"]
)
def test_the_database_refuses_to_change_tombstones(event: AuditEvent, sql: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
