"""Recording events: per-stream sequences, hash links, payload cleaning, transactions."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from audit.events import NewEvent, _known_heads, record_event, record_events
from audit.hashing import ZERO_HASH
from audit.models import AuditEvent, AuditStreamHead
from audit.verify import verify_chains


def _event(stream: str = "run:1", kind: str = "step.succeeded", **extra: Any) -> AuditEvent:
    return record_event(stream=stream, kind=kind, actor="system", **extra)


def _expected_hash(event: AuditEvent) -> str:
    """The documented hash, computed independently of audit.hashing (ASCII keys, no floats)."""
    document = {
        "stream": event.stream,
        "seq": event.seq,
        "created_at": event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor,
        "kind": event.kind,
        "run_id": event.run_id,
        "step_id": event.step_id,
        "playbook": event.playbook,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.django_db
def test_the_first_event_of_a_stream_links_to_64_zeros() -> None:
    first = _event(payload={"host": "ws-1"}, run_id=1, step_id="contain")
    assert first.seq == 1
    assert first.prev_hash == ZERO_HASH == "0" * 64
    assert first.hash == _expected_hash(first)


@pytest.mark.django_db
def test_each_event_links_to_the_hash_of_the_one_before() -> None:
    first, second, third = (_event(payload={"n": n}) for n in range(3))
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert all(e.hash == _expected_hash(e) for e in (first, second, third))
    assert len({first.hash, second.hash, third.hash}) == 3


@pytest.mark.django_db
def test_sequences_are_counted_per_stream() -> None:
    events = record_events(
        [
            NewEvent(stream="run:1", kind="run.started", actor="user:bob"),
            NewEvent(stream="run:2", kind="run.started", actor="user:bob"),
            NewEvent(stream="run:1", kind="step.started", actor="system"),
            NewEvent(stream="system", kind="worker.started", actor="worker:h:1"),
        ]
    )
    assert [(e.stream, e.seq) for e in events] == [
        ("run:1", 1),
        ("run:2", 1),
        ("run:1", 2),
        ("system", 1),
    ]
    assert events[2].prev_hash == events[0].hash
    assert events[1].prev_hash == ZERO_HASH
    assert all(e.pk is not None for e in events)
    heads = {h.stream: (h.seq, h.hash) for h in AuditStreamHead.objects.all()}
    assert heads == {
        "run:1": (2, events[2].hash),
        "run:2": (1, events[1].hash),
        "system": (1, events[3].hash),
    }


@pytest.mark.django_db
def test_a_stored_event_rehashes_to_its_hash_after_a_round_trip_through_the_database() -> None:
    payload = {"ratio": 0.1, "whole": 2.0, "big": 1e16, "neg_zero": -0.0, "text": "日本", "n": [1]}
    event = _event(payload=payload, playbook="contain-host")
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.created_at == event.created_at
    assert stored.created_at.tzinfo is not None
    assert stored.compute_hash() == stored.hash == event.hash


@pytest.mark.django_db
def test_secrets_are_redacted_before_the_payload_is_hashed_and_stored() -> None:
    event = _event(payload={"request": {"headers": {"Authorization": "Bearer s3cr3t"}}})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.payload == {"request": {"headers": {"Authorization": "[redacted]"}}}
    assert "s3cr3t" not in json.dumps(stored.payload)
    assert stored.compute_hash() == stored.hash


@pytest.mark.django_db
def test_common_python_values_in_payloads_become_plain_json() -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = _event(payload={"at": moment, "cost": Decimal("1.50"), "tags": {"b", "a"}, "t": (1, 2)})
    assert event.payload == {
        "at": "2025-01-02T03:04:05+00:00",
        "cost": "1.50",
        "tags": ["a", "b"],
        "t": [1, 2],
    }


@pytest.mark.django_db
def test_a_value_that_is_not_json_is_refused_naming_its_key() -> None:
    with pytest.raises(TypeError, match=r"payload\.evidence\.blob is a bytes"):
        _event(payload={"evidence": {"blob": b"\x00\x01"}})
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_not_a_number_in_a_payload_is_refused() -> None:
    with pytest.raises(ValueError, match=r"payload\.score"):
        _event(payload={"score": float("inf")})


@pytest.mark.django_db
def test_an_event_without_a_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        _event(kind="")


@pytest.mark.django_db
def test_appending_to_a_stream_this_process_did_not_write_last_takes_three_queries(
    django_assert_num_queries: Any,
) -> None:
    _event()
    _known_heads.clear()  # as if another process had appended last
    with django_assert_num_queries(3):  # lock the head, insert the events, move the head
        record_events([NewEvent(stream="run:1", kind="step.started", actor="system")] * 5)


@pytest.mark.django_db
def test_appending_where_this_process_left_the_head_takes_one_query_on_postgresql(
    django_assert_num_queries: Any,
) -> None:
    _event()
    expected = 1 if connection.vendor == "postgresql" else 3  # move the head and insert, at once
    with django_assert_num_queries(expected):
        record_events([NewEvent(stream="run:1", kind="step.started", actor="system")] * 5)
    assert verify_chains().ok


@pytest.mark.django_db
def test_a_head_moved_by_another_writer_is_found_and_the_chain_stays_whole(
    django_assert_num_queries: Any,
) -> None:
    first = _event()
    stale = dict(_known_heads)
    _known_heads.clear()
    _event(kind="step.started")  # "another process" appends: this one's idea of the head is stale
    _known_heads.update(stale)
    expected = (
        1 + 3 if connection.vendor == "postgresql" else 3
    )  # a failed compare-and-set, then the lock
    with django_assert_num_queries(expected):
        third = _event(kind="step.queued")
    assert (first.seq, third.seq) == (1, 3)
    assert AuditEvent.objects.filter(stream="run:1").count() == 3
    assert verify_chains().ok


@pytest.mark.django_db
def test_starting_a_new_stream_takes_five_queries(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(5):  # + create the head, lock it
        _event(stream="run:9")


@pytest.mark.django_db
def test_events_rolled_back_with_their_transaction_leave_no_gap() -> None:
    def failing_transition() -> None:
        with transaction.atomic():
            _event()
            raise RuntimeError("the step transition failed")

    _event()
    with pytest.raises(RuntimeError):
        failing_transition()
    again = _event()
    assert again.seq == 2
    assert AuditStreamHead.objects.get(stream="run:1").seq == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("allow_audit_truncate")
def test_recording_outside_a_transaction_is_refused() -> None:
    with pytest.raises(TransactionManagementError, match=r"transaction\.atomic"):
        _event()
    assert not AuditEvent.objects.exists()
    with transaction.atomic():
        assert _event().seq == 1


@pytest.mark.django_db
def test_nul_and_lone_surrogates_in_payloads_are_replaced_not_refused() -> None:
    with transaction.atomic():
        event = _event(payload={"message": "vendor\x00said\ud800 this"})
    assert event.payload == {"message": "vendor\ufffdsaid\ufffd this"}
