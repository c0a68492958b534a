"""Signed digests: what each kind of tampering looks like to verify_trail, and where."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection, connections, transaction
from django.utils import timezone

from audit import merkle
from audit.digest_verify import DIGESTS
from audit.digests import digest_document, digest_if_due, document_bytes, make_digest
from audit.events import NewEvent, record_events
from audit.hashing import ZERO_HASH
from audit.models import AuditDigest, AuditDigestHead, AuditEvent, AuditStreamHead, head_leaf
from audit.verify import verify_trail
from tests.audit.conftest import tamper


def write(stream: str, *kinds: str) -> list[AuditEvent]:
    with transaction.atomic():
        return record_events([NewEvent(stream=stream, kind=k, actor="system") for k in kinds])


@pytest.fixture
def trail(transactional_db: None, allow_audit_truncate: None) -> dict[str, Any]:
    """run:1 and run:2 with four events each and digest #1; then two more on run:1 and
    digest #2. Each write commits, as in production: on PostgreSQL a digest lists what
    moved in transactions not yet visible to the previous one, so one test transaction
    holding everything would make every digest list every head."""
    write("run:1", "a", "b", "c", "d")
    write("run:2", "a", "b", "c", "d")
    first = make_digest()
    write("run:1", "e", "f")
    second = make_digest()
    return {"first": first, "second": second}


def problem(**expected: Any) -> dict[str, Any]:
    result = verify_trail()
    assert not result.ok
    found = dict(result.first_problem or {})
    for key, value in expected.items():
        assert key in found, found
        assert (value in found[key]) if key == "reason" else (found[key] == value), found
    return found


def rewrite(stream: str, from_seq: int, kind: str) -> None:
    """As an attacker with database access would: change one event's kind and recompute
    the hashes of it and every later event, and the head, so the chain verifies."""
    events = list(AuditEvent.objects.filter(stream=stream).order_by("seq"))
    prev = events[from_seq - 2].hash if from_seq > 1 else ZERO_HASH
    for event in events[from_seq - 1 :]:
        if event.seq == from_seq:
            event.kind = kind
        event.prev_hash = prev
        event.hash = event.compute_hash()
        tamper("UPDATE {table} SET kind = %s, prev_hash = %s, hash = %s WHERE id = %s",
               [event.kind, event.prev_hash, event.hash, event.pk])  # fmt: skip
        prev = event.hash
    tamper("UPDATE {heads} SET hash = %s WHERE stream = %s", [prev, stream])


def test_digests_chain_and_list_the_heads_that_moved(trail: dict[str, Any]) -> None:
    first, second = trail["first"], trail["second"]
    assert (first.seq, first.head_count, first.previous_hash) == (1, 2, ZERO_HASH)
    assert (second.seq, second.head_count, second.previous_hash) == (2, 1, first.hash)
    listed = AuditDigestHead.objects.filter(digest_seq=2).values_list("stream", "seq")
    assert list(listed) == [("run:1", 6)]
    # An empty digest is still made: it proves nothing moved in its interval.
    third = make_digest()
    assert (third.seq, third.head_count) == (3, 0)
    result = verify_trail()
    assert result.ok, result.first_problem
    assert (result.events_checked, result.streams_checked, result.digests_checked) == (10, 2, 3)


def test_a_digest_signs_its_document_with_the_installations_key(trail: dict[str, Any]) -> None:
    from audit.signing import current_public_key, key_id

    digest = trail["second"]
    data = document_bytes(digest_document(digest))
    assert hashlib.sha256(data).hexdigest() == digest.hash
    current_public_key().verify(base64.b64decode(digest.signature), data)  # raises if not
    assert digest.key_id == key_id(current_public_key())
    leaves = [
        merkle.leaf_hash(head_leaf("run:1", 6, AuditStreamHead.objects.get(stream="run:1").hash))
    ]
    assert digest.heads_root == merkle.root(leaves).hex()


def test_a_rewritten_stream_is_caught_by_the_digest_that_signed_it(trail: dict[str, Any]) -> None:
    rewrite("run:2", 2, "b-forged")
    assert verify_trail(["run:1"]).ok
    found = problem(stream="run:2", seq=4, digest=1, reason="is not the one digest #1 signed")
    assert found["id"] == AuditEvent.objects.get(stream="run:2", seq=4).pk


def test_a_rewrite_before_an_earlier_digest_is_caught_at_that_digest(trail: dict[str, Any]) -> None:
    rewrite("run:1", 3, "c-forged")
    problem(stream="run:1", seq=4, digest=1, reason="rewritten at or before this event")


def test_a_deleted_event_leaves_a_gap(trail: dict[str, Any]) -> None:
    victim = AuditEvent.objects.get(stream="run:2", seq=3)
    tamper("DELETE FROM {table} WHERE id = %s", [victim.pk])
    problem(stream="run:2", seq=4, reason="sequence gap: expected seq 3, found seq 4")


def test_deleting_the_end_of_a_stream_and_its_head_is_caught_by_the_digest(
    trail: dict[str, Any],
) -> None:
    last_kept = AuditEvent.objects.get(stream="run:1", seq=4)
    tamper("DELETE FROM {table} WHERE stream = 'run:1' AND seq > 4")
    tamper("UPDATE {heads} SET seq = 4, hash = %s WHERE stream = 'run:1'", [last_kept.hash])
    problem(stream="run:1", seq=5, id=None, digest=2,
            reason="digest #2 lists the stream at seq 6, but it ends at seq 4")  # fmt: skip


def test_a_deleted_stream_is_caught_by_the_digest_that_named_it(trail: dict[str, Any]) -> None:
    tamper("DELETE FROM {table} WHERE stream = 'run:2'")
    tamper("DELETE FROM {heads} WHERE stream = 'run:2'")
    problem(stream="run:2", seq=4, digest=1, reason="its events and head are gone")


def test_reordered_events_are_caught_where_the_order_changed(trail: dict[str, Any]) -> None:
    second = AuditEvent.objects.get(stream="run:2", seq=2)
    third = AuditEvent.objects.get(stream="run:2", seq=3)
    tamper("UPDATE {table} SET seq = 1000 WHERE id = %s", [second.pk])
    tamper("UPDATE {table} SET seq = 2 WHERE id = %s", [third.pk])
    tamper("UPDATE {table} SET seq = 3 WHERE id = %s", [second.pk])
    problem(stream="run:2", seq=2, id=third.pk, reason="hash does not match")


def test_events_reordered_and_rehashed_are_caught_by_the_digest(trail: dict[str, Any]) -> None:
    # Swap the kinds of events 2 and 3 and rebuild the chain: it verifies on its own.
    rewrite("run:2", 2, "c")
    rewrite("run:2", 3, "b")
    problem(stream="run:2", seq=4, digest=1, reason="is not the one digest #1 signed")


def test_an_altered_digest_is_caught(trail: dict[str, Any]) -> None:
    tamper("UPDATE {digests} SET watermark = watermark + 1 WHERE seq = 1")
    problem(stream=DIGESTS, seq=1, id=trail["first"].pk, reason="does not match its contents")


def test_a_digest_forged_with_another_key_is_caught(trail: dict[str, Any]) -> None:
    forged = AuditDigest.objects.get(seq=2)
    forged.heads_root = "0" * 64
    data = document_bytes(digest_document(forged))
    signature = base64.b64encode(Ed25519PrivateKey.generate().sign(data)).decode()
    tamper("UPDATE {digests} SET heads_root = %s, hash = %s, signature = %s WHERE seq = 2",
           [forged.heads_root, hashlib.sha256(data).hexdigest(), signature])  # fmt: skip
    problem(stream=DIGESTS, seq=2, reason="its signature does not verify")


def test_an_altered_listed_head_is_caught_by_the_signed_root(trail: dict[str, Any]) -> None:
    tamper("UPDATE {digest_heads} SET hash = %s WHERE digest_seq = 1 AND stream = 'run:2'",
           ["f" * 64])  # fmt: skip
    problem(stream=DIGESTS, seq=1, reason="do not match the root it signed")


def test_a_deleted_listed_head_is_caught(trail: dict[str, Any]) -> None:
    tamper("DELETE FROM {digest_heads} WHERE digest_seq = 1 AND stream = 'run:2'")
    problem(stream=DIGESTS, seq=1, reason="lists 2 stream heads but 1 are stored")


def test_a_deleted_digest_breaks_the_digests_chain(trail: dict[str, Any]) -> None:
    third = make_digest()
    tamper("DELETE FROM {digest_heads} WHERE digest_seq = 2")
    tamper("DELETE FROM {digests} WHERE seq = 2")
    problem(stream=DIGESTS, seq=3, id=third.pk, reason="digest #2 is missing")


def test_deleting_the_newest_digests_shows_once_one_is_overdue(
    trail: dict[str, Any], settings: Any
) -> None:
    settings.BULWARK_AUDIT_DIGEST_SECONDS = 300
    tamper("DELETE FROM {digest_heads} WHERE digest_seq = 2")
    tamper("DELETE FROM {digests} WHERE seq = 2")
    # Until a digest is overdue, the newest one's deletion cannot be told from a digest
    # not made yet (as with CloudTrail's digest files).
    assert verify_trail().ok
    later = timezone.now() + timedelta(seconds=3 * 300 + 1)
    found = verify_trail(now=later).first_problem
    assert found is not None
    assert (found["stream"], found["seq"], found["id"]) == (DIGESTS, 2, None)
    assert "newest digest, #1, was made at" in found["reason"]
    assert "newer digests were deleted or the scheduler is not running" in found["reason"]


def test_a_trail_with_no_digest_fails_once_one_is_overdue(db: None, settings: Any) -> None:
    write("system", "worker.started")
    assert verify_trail().ok
    later = timezone.now() + timedelta(seconds=3 * settings.BULWARK_AUDIT_DIGEST_SECONDS + 1)
    found = verify_trail(now=later).first_problem
    assert found is not None
    assert found["stream"] == DIGESTS
    assert "no digest" in found["reason"]


def test_digest_if_due_waits_for_the_interval(trail: dict[str, Any], settings: Any) -> None:
    settings.BULWARK_AUDIT_DIGEST_SECONDS = 300
    assert digest_if_due() is None
    due = digest_if_due(timezone.now() + timedelta(seconds=301))
    assert due is not None
    assert due.seq == 3
    settings.BULWARK_AUDIT_DIGEST_SECONDS = 0
    assert digest_if_due(timezone.now() + timedelta(days=1)) is None


def test_events_added_behind_bulwarks_back_are_caught_by_the_next_digests_absence(
    trail: dict[str, Any],
) -> None:
    # A well-formed event appended straight into the tables, head moved to match: its
    # chain verifies, but the head moved before digest #2 and no digest lists it.
    last = AuditEvent.objects.get(stream="run:2", seq=4)
    forged = AuditEvent(stream="run:2", seq=5, created_at=last.created_at, actor="system",
                        kind="e", payload={}, prev_hash=last.hash)  # fmt: skip
    forged.hash = forged.compute_hash()
    tamper("INSERT INTO {table} (stream, seq, created_at, actor, kind, payload, prev_hash, hash) "
           "VALUES ('run:2', 5, %s, 'system', 'e', {json}, %s, %s)",
           [last.created_at, "{}", forged.prev_hash, forged.hash])  # fmt: skip
    tamper("UPDATE {heads} SET seq = 5, hash = %s WHERE stream = 'run:2'", [forged.hash])
    problem(stream="run:2", seq=5, id=None, digest=2,
            reason="was written before digest #2 but no digest lists it")  # fmt: skip


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
def test_a_transaction_that_commits_after_a_digest_is_listed_by_the_next(
    transactional_db: None, allow_audit_truncate: None
) -> None:
    written, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                record_events([NewEvent(stream="run:9", kind="late", actor="system")])
                written.set()
                release.wait(10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert written.wait(10)
    write("run:1", "a")  # committed before the digest, by another transaction
    first = make_digest()
    release.set()
    writer.join(10)
    assert list(AuditDigestHead.objects.filter(digest_seq=1).values_list("stream", flat=True)) == [
        "run:1"
    ]
    second = make_digest()
    listed = AuditDigestHead.objects.filter(digest_seq=second.seq).values_list("stream", flat=True)
    assert "run:9" in listed
    third = make_digest()  # a watermark past the late write: it must be in a digest now
    assert AuditStreamHead.objects.get(stream="run:9").changed < third.watermark
    assert first.watermark <= AuditStreamHead.objects.get(stream="run:9").changed
    assert verify_trail().ok


def test_the_schedulers_sweep_makes_a_digest_when_one_is_due(db: None, settings: Any) -> None:
    from core.reconciler import sweep

    settings.BULWARK_AUDIT_DIGEST_SECONDS = 300
    write("system", "worker.started")
    sweep()
    sweep()  # not due again yet
    assert list(AuditDigest.objects.values_list("seq", "head_count")) == [(1, 1)]
