"""verify_chains finds any alteration: contents, links, gaps, a missing tail or head."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.events import NewEvent, record_events
from audit.models import AuditEvent, AuditStreamHead
from audit.verify import verify_chains
from tests.audit.conftest import tamper


@pytest.fixture
def chains(db: None) -> dict[str, list[AuditEvent]]:
    """Two runs of four events each and a one-event system stream."""
    events = record_events(
        [
            NewEvent(
                stream=f"run:{run}", kind=f"step.{n}", actor="system", run_id=run, payload={"n": n}
            )
            for n in range(4)
            for run in (1, 2)
        ]
        + [NewEvent(stream="system", kind="worker.started", actor="worker:h:1")]
    )
    by_stream: dict[str, list[AuditEvent]] = {}
    for event in events:
        by_stream.setdefault(event.stream, []).append(event)
    return by_stream


def test_untouched_chains_verify(chains: dict[str, list[AuditEvent]]) -> None:
    result = verify_chains()
    assert result.ok
    assert (result.events_checked, result.streams_checked) == (9, 3)
    assert result.first_problem is None


def test_an_empty_trail_verifies(db: None) -> None:
    assert verify_chains().ok


def test_a_tampered_payload_is_found(chains: dict[str, list[AuditEvent]]) -> None:
    victim = chains["run:2"][1]
    tamper("UPDATE {table} SET payload = {json} WHERE id = %s", ['{"n": 99}', victim.pk])
    result = verify_chains()
    assert not result.ok
    assert result.first_problem == {
        "stream": "run:2",
        "seq": 2,
        "id": victim.pk,
        "reason": "hash does not match the event's contents (the event was altered)",
    }


@pytest.mark.skipif(connection.vendor == "postgresql", reason="jsonb refuses text not JSON")
@pytest.mark.parametrize("text", ['{"n": NaN}', '{"n": "\\ud800"}', '{"n": 1'])
def test_a_payload_no_event_could_hold_is_found_as_altered(
    chains: dict[str, list[AuditEvent]], text: str
) -> None:
    victim = chains["run:1"][2]
    with connection.cursor() as cursor:  # as an attacker with the file would, past the check
        cursor.execute("PRAGMA ignore_check_constraints = ON")
    try:
        tamper("UPDATE {table} SET payload = {json} WHERE id = %s", [text, victim.pk])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA ignore_check_constraints = OFF")
    result = verify_chains()
    assert result.first_problem == {
        "stream": "run:1",
        "seq": 3,
        "id": victim.pk,
        "reason": "hash does not match the event's contents (the event was altered)",
    }


def test_a_rehashed_forgery_is_found_by_the_next_link(chains: dict[str, list[AuditEvent]]) -> None:
    victim = AuditEvent.objects.get(pk=chains["run:1"][1].pk)
    victim.payload = {"n": 99}
    forged_hash = victim.compute_hash()
    tamper(
        "UPDATE {table} SET payload = {json}, hash = %s WHERE id = %s",
        ['{"n": 99}', forged_hash, victim.pk],
    )
    problem = verify_chains().first_problem
    assert problem is not None
    assert (problem["stream"], problem["seq"]) == ("run:1", 3)
    assert "prev_hash" in problem["reason"]


def test_a_deleted_middle_event_is_found_as_a_gap(chains: dict[str, list[AuditEvent]]) -> None:
    tamper("DELETE FROM {table} WHERE id = %s", [chains["run:1"][1].pk])
    problem = verify_chains().first_problem
    assert problem is not None
    assert (problem["stream"], problem["seq"], problem["id"]) == ("run:1", 3, chains["run:1"][2].pk)
    assert "expected seq 2, found seq 3" in problem["reason"]


def test_a_deleted_tail_is_found_by_the_stream_head(chains: dict[str, list[AuditEvent]]) -> None:
    tamper("DELETE FROM {table} WHERE id = %s", [chains["run:2"][3].pk])
    problem = verify_chains().first_problem
    assert problem is not None
    assert (problem["stream"], problem["seq"], problem["id"]) == ("run:2", 4, None)
    assert "head is at seq 4 but the last event is seq 3" in problem["reason"]


def test_a_whole_deleted_stream_is_found_by_its_head(chains: dict[str, list[AuditEvent]]) -> None:
    tamper("DELETE FROM {table} WHERE stream = %s", ["system"])
    problem = verify_chains().first_problem
    assert problem is not None
    assert (problem["stream"], problem["seq"]) == ("system", 1)


def test_a_deleted_head_is_found(chains: dict[str, list[AuditEvent]]) -> None:
    AuditStreamHead.objects.filter(stream="run:1").delete()
    problem = verify_chains().first_problem
    assert problem is not None
    assert (problem["stream"], problem["seq"]) == ("run:1", 1)
    assert "no head" in problem["reason"]


def test_a_reordered_chain_is_found(chains: dict[str, list[AuditEvent]]) -> None:
    second, third = chains["run:1"][1], chains["run:1"][2]
    tamper("UPDATE {table} SET seq = 1000 WHERE id = %s", [second.pk])
    tamper("UPDATE {table} SET seq = 2 WHERE id = %s", [third.pk])
    tamper("UPDATE {table} SET seq = 3 WHERE id = %s", [second.pk])
    result = verify_chains()
    assert not result.ok
    assert result.first_problem is not None
    assert (result.first_problem["stream"], result.first_problem["seq"]) == ("run:1", 2)
    assert result.first_problem["id"] == third.pk


def test_verifying_chosen_streams_ignores_the_others(chains: dict[str, list[AuditEvent]]) -> None:
    tamper(
        "UPDATE {table} SET payload = {json} WHERE id = %s", ['{"n": 99}', chains["run:2"][0].pk]
    )
    result = verify_chains(["run:1", "system"])
    assert result.ok
    assert (result.events_checked, result.streams_checked) == (5, 2)
    assert not verify_chains(["run:2"]).ok


def test_verifying_reads_heads_in_batches(
    chains: dict[str, list[AuditEvent]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("audit.verify.STREAMS_PER_BATCH", 1)
    monkeypatch.setattr("audit.verify.EVENTS_PER_CHUNK", 2)
    assert verify_chains().streams_checked == 3
    tamper("DELETE FROM {table} WHERE id = %s", [chains["system"][0].pk])
    problem = verify_chains().first_problem
    assert problem is not None
    assert problem["stream"] == "system"
