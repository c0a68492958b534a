"""Rows read ahead on a thread: the same rows as iterator(), in the caller's transaction,
errors raised to the caller, and nothing left running when the caller stops early."""

from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest
from django.db import DataError, connection, transaction
from django.db.models import IntegerField, QuerySet, TextField
from django.db.models.expressions import RawSQL

from audit.events import NewEvent, record_events
from audit.models import AuditEvent
from audit.read_ahead import read_ahead
from audit.verify import event_rows

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="only PostgreSQL reads ahead on a thread"
)


def _events(count: int) -> None:
    record_events([NewEvent(stream=f"run:{n % 7}", kind="k", actor="system", payload={"n": n})
                   for n in range(count)])  # fmt: skip


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "audit-read-ahead"]


def test_the_rows_are_those_iterator_gives_in_order() -> None:
    _events(230)
    query = AuditEvent.objects.order_by("stream", "seq").values_list("stream", "seq", "payload")
    assert list(read_ahead(query, chunk_size=16, depth=2)) == list(query.iterator(chunk_size=16))
    assert len(list(read_ahead(query, chunk_size=16))) == 230


def test_an_empty_result_reads_as_no_rows() -> None:
    query = AuditEvent.objects.filter(stream="run:none").values_list("id")
    assert list(read_ahead(query, chunk_size=16)) == []


def test_only_values_list_querysets_are_read() -> None:
    with pytest.raises(TypeError, match="values_list"):
        read_ahead(AuditEvent.objects.all(), chunk_size=16)


@on_postgresql
def test_postgresql_rows_are_fetched_on_a_thread_inside_the_callers_transaction() -> None:
    _events(100)
    with transaction.atomic():
        record_events([NewEvent(stream="run:uncommitted", kind="k", actor="system")])
        query = AuditEvent.objects.order_by("id").values_list("stream", flat=False)
        rows = read_ahead(query, chunk_size=10, depth=2)
        first = next(rows)
        assert len(_readers()) == 1  # fetching the next chunks meanwhile
        streams = [first[0], *(row[0] for row in rows)]
        # The thread read this transaction's own uncommitted event: the same snapshot.
        assert streams[-1] == "run:uncommitted"
        assert len(streams) == 101
    assert _readers() == []


@on_postgresql
def test_stopping_early_ends_the_thread_and_the_connection_is_usable_again() -> None:
    _events(300)
    with transaction.atomic():
        query = AuditEvent.objects.order_by("id").values_list("id")
        with closing(read_ahead(query, chunk_size=5, depth=1)) as rows:
            next(rows)
        assert _readers() == []
        with connection.cursor() as cursor:  # the server-side cursor is closed
            cursor.execute("SELECT count(*) FROM pg_cursors")
            assert cursor.fetchone() == (0,)
        assert AuditEvent.objects.count() == 300


@on_postgresql
def test_an_error_while_fetching_on_the_thread_is_raised_to_the_caller() -> None:
    _events(50)
    first_id = AuditEvent.objects.order_by("id").values_list("id", flat=True)[0]
    # Division by zero at the 30th row: the server fails a FETCH the thread sends.
    broken = RawSQL(  # noqa: S611 (no outside input)
        f"1 / ({AuditEvent._meta.db_table}.id - %s)", [first_id + 29], IntegerField()
    )
    query = AuditEvent.objects.order_by("id").annotate(x=broken).values_list("id", "x")
    seen: list[tuple[int, int]] = []
    with pytest.raises(DataError, match="division by zero"), transaction.atomic():
        seen.extend(read_ahead(query, chunk_size=4, depth=2))
    assert len(seen) < 30
    assert _readers() == []


def test_event_rows_read_the_verification_columns_in_order() -> None:
    _events(20)
    with closing(event_rows(AuditEvent.objects.all())) as rows:
        read = list(rows)
    assert [(row[1], row[2]) for row in read] == sorted((row[1], row[2]) for row in read)
    assert all(isinstance(row[9], str) and row[9].startswith("{") for row in read)


@on_postgresql
def test_an_interrupt_while_the_server_works_cancels_the_fetch_at_once() -> None:
    _events(10)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    slow = RawSQL(  # noqa: S611 (no outside input)
        f"CASE WHEN {AuditEvent._meta.db_table}.id = %s THEN pg_sleep(20)::text ELSE '' END",
        [ids[3]],
        TextField(),
    )
    query = AuditEvent.objects.order_by("id").annotate(slow=slow).values_list("id", "slow")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _interrupt_while_fetching(query)
    assert time.monotonic() - started < 10
    assert _readers() == []


def _interrupt_while_fetching(query: QuerySet[AuditEvent, tuple[int, str]]) -> None:
    with transaction.atomic():
        rows = read_ahead(query, chunk_size=1, depth=1)
        next(rows)
        time.sleep(0.3)  # the thread is now in the FETCH that sleeps
        rows.throw(KeyboardInterrupt)


@on_postgresql
def test_a_thread_that_cannot_start_leaves_no_cursor_open(monkeypatch: pytest.MonkeyPatch) -> None:
    _events(5)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="new thread"):
        next(read_ahead(AuditEvent.objects.values_list("id"), chunk_size=2))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        assert cursor.fetchone() == (0,)


@on_postgresql
def test_without_server_side_cursors_rows_are_read_on_this_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _events(30)
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    rows = read_ahead(AuditEvent.objects.order_by("id").values_list("id"), chunk_size=5)
    next(rows)
    assert _readers() == []
    assert len([1, *rows]) == 30
