"""Concurrent writers to one stream queue on its head row and never fork the chain."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from audit.events import record_event
from audit.models import AuditEvent
from audit.verify import verify_chains
from tests.audit.conftest import on_postgresql

WRITERS = 4
EVENTS_EACH = 15


@on_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("allow_audit_truncate")
def test_concurrent_writers_to_a_new_stream_build_one_unbroken_chain() -> None:
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            start.wait()
            for n in range(EVENTS_EACH):
                with transaction.atomic():
                    record_event(
                        stream="system", kind="tick", actor=f"worker:h:{writer}", payload={"n": n}
                    )
        except BaseException as error:  # reported by the main thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = list(
        AuditEvent.objects.filter(stream="system").order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, WRITERS * EVENTS_EACH + 1))
    result = verify_chains()
    assert result.ok, result.first_problem
    assert result.events_checked == WRITERS * EVENTS_EACH
