"""Retention beside concurrent writers, on PostgreSQL: a hold placed during a pass holds,
and verification reads one snapshot."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.utils import timezone

from audit import verify
from audit.digest_verify import DigestChain
from audit.events import NewEvent, record_events
from audit.holds import hold_lock, place_hold
from audit.models import AuditEvent
from audit.retention import prune_audit

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has one writer at a time"
)


def write(stream: str, kind: str, days_ago: float, run_id: int | None = None) -> None:
    with (
        time_machine.travel(timezone.now() - timedelta(days=days_ago), tick=True),
        transaction.atomic(),
    ):
        record_events([NewEvent(stream=stream, kind=kind, actor="system", run_id=run_id)])


def test_a_hold_placed_while_a_pass_runs_holds_the_runs_events_in_other_streams(
    transactional_db: None,
) -> None:
    write("playbook:contain", "playbook.created", 600)
    write("playbook:contain", "playbook.version_created", 590, run_id=9)
    write("run:9", "run.created", 10)  # recent: its own stream is not pruned anyway
    locked, placed = threading.Event(), threading.Event()

    def hold_while_pruning() -> None:
        try:
            with transaction.atomic():
                hold_lock()
                locked.set()
                time.sleep(0.5)  # the pass starts meanwhile, and must wait
                place_hold(9, reason="litigation", actor="user:auditor")
            placed.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_while_pruning)
    holder.start()
    assert locked.wait(5)
    result = prune_audit(timezone.now() - timedelta(days=400), keep_runs=lambda ids: set(),
                         reason="t")  # fmt: skip
    holder.join(5)
    assert placed.is_set()
    assert result.events == 1  # playbook.created only: the held run's event stays
    seqs = AuditEvent.objects.filter(stream="playbook:contain").values_list("seq", flat=True)
    assert list(seqs) == [2]


def test_verification_reads_one_snapshot(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = verify.verify_digest_chain

    def spy() -> DigestChain:
        with connection.cursor() as cursor:
            cursor.execute("SHOW transaction_isolation")
            seen.append(cursor.fetchone()[0])
        return real()

    monkeypatch.setattr(verify, "verify_digest_chain", spy)
    verify.verify_trail()
    assert seen == ["repeatable read"]
