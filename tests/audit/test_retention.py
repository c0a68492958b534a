"""Retention: old trails are pruned behind signed tombstones, held and open runs are kept,
and the trail (and a bundle) still verifies; tampering with tombstones shows."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import transaction
from django.utils import timezone

from audit.bundle_verify import verify_bundle
from audit.bundles import write_bundle
from audit.digests import make_digest
from audit.events import NewEvent, record_event, record_events
from audit.holds import HoldError, place_hold, release_hold
from audit.models import AuditEvent, AuditStreamHead, AuditTombstone, LegalHold
from audit.retention import PruneResult, prune_audit, run_of
from audit.tombstones import sign_tombstone
from audit.verify import verify_trail
from tests.audit.conftest import tamper
from tests.audit.test_bundles import read, resign

pytestmark = pytest.mark.django_db

RETENTION = timedelta(days=400)


def keep_none(run_ids: set[int]) -> set[int]:
    return set()


def write(
    stream: str, *kinds: str, days_ago: float = 0, run_id: int | None = None
) -> list[AuditEvent]:
    run_id = run_id if run_id is not None else run_of(stream)
    events = [NewEvent(stream=stream, kind=k, actor="system", run_id=run_id) for k in kinds]
    with (
        time_machine.travel(timezone.now() - timedelta(days=days_ago), tick=True),
        transaction.atomic(),
    ):
        return record_events(events)


def prune(keep: Callable[[set[int]], set[int]] = keep_none) -> PruneResult:
    return prune_audit(timezone.now() - RETENTION, keep_runs=keep, reason="test retention")


def verified() -> Any:
    make_digest()  # a fresh digest, so the trail is not stale
    return verify_trail()


def problem(**expected: Any) -> dict[str, Any]:
    result = verified()
    assert not result.ok
    found = dict(result.first_problem or {})
    for key, value in expected.items():
        assert key in found, found
        assert (value in found[key]) if key == "reason" else (found[key] == value), found
    return found


def old_run(run: int = 1, days_ago: float = 500) -> list[AuditEvent]:
    return write(f"run:{run}", "run.created", "step.succeeded", "run.succeeded", days_ago=days_ago)


def test_an_old_run_is_pruned_whole_behind_a_signed_tombstone() -> None:
    old = old_run(1)
    write("run:2", "run.created", "run.succeeded", days_ago=10)
    make_digest()  # lists run:1 at seq 3 before it is pruned
    result = prune()
    assert (result.streams, result.events, result.refused) == (1, 3, [])
    assert not AuditEvent.objects.filter(stream="run:1").exists()
    assert AuditEvent.objects.filter(stream="run:2").count() == 2
    tombstone = AuditTombstone.objects.get(stream="run:1")
    assert (tombstone.from_seq, tombstone.through_seq, tombstone.event_count) == (1, 3, 3)
    assert (tombstone.prev_hash, tombstone.hash) == (old[0].prev_hash, old[-1].hash)
    assert (tombstone.first_at, tombstone.last_at) == (old[0].created_at, old[-1].created_at)
    # The head stays, so the digests that listed the stream still find it.
    assert AuditStreamHead.objects.get(stream="run:1").seq == 3
    pruned = AuditEvent.objects.get(stream="system", kind="audit.pruned")
    assert pruned.payload["streams"] == 1
    assert pruned.payload["events"] == 3
    assert pruned.payload["reason"] == "test retention"
    assert verified().ok


def test_a_run_with_any_recent_event_is_kept_whole() -> None:
    old_run(1)
    write("run:1", "audit.bundle_exported", days_ago=5)
    assert prune().events == 0
    assert AuditEvent.objects.filter(stream="run:1").count() == 4


def test_a_run_on_legal_hold_is_kept_until_the_hold_is_released() -> None:
    old_run(7, days_ago=900)
    with time_machine.travel(timezone.now() - timedelta(days=800), tick=True):
        place_hold(7, reason="case 2026-114", actor="user:auditor")
    result = prune()
    assert (result.events, result.held) == (0, 1)
    assert AuditEvent.objects.filter(stream="run:7").count() == 4
    with time_machine.travel(timezone.now() - timedelta(days=700), tick=True):
        release_hold(7, reason="case closed", actor="user:auditor")
    assert not LegalHold.objects.exists()
    result = prune()
    assert (result.streams, result.events, result.held) == (1, 5, 0)
    assert verified().ok


def test_a_held_run_stops_pruning_of_other_streams_at_its_first_event() -> None:
    write("playbook:contain", "playbook.created", days_ago=600)
    write("playbook:contain", "playbook.version_created", days_ago=590, run_id=9)
    write("playbook:contain", "playbook.published", days_ago=580)
    write("run:9", "run.created", days_ago=590)
    with time_machine.travel(timezone.now() - timedelta(days=500), tick=True):
        place_hold(9, reason="litigation", actor="user:auditor")
    result = prune()
    assert result.events == 1
    assert result.held == 2  # run:9 itself, and the playbook stream from seq 2
    left = AuditEvent.objects.filter(stream="playbook:contain").values_list("seq", flat=True)
    assert list(left) == [2, 3]
    tombstone = AuditTombstone.objects.get(stream="playbook:contain")
    assert (tombstone.from_seq, tombstone.through_seq) == (1, 1)
    assert verified().ok


def test_open_runs_are_kept() -> None:
    old_run(1)
    old_run(2)
    result = prune(keep=lambda ids: {1} & ids)
    assert (result.streams, result.kept_open) == (1, 1)
    assert AuditEvent.objects.filter(stream="run:1").count() == 3
    assert not AuditEvent.objects.filter(stream="run:2").exists()


def test_a_long_stream_is_pruned_in_steps_whose_tombstones_chain() -> None:
    write("system", "connection.created", "connection.updated", days_ago=700)
    write("system", "connection.tested", days_ago=380)
    write("system", "connection.deleted", days_ago=100)
    assert prune().events == 2
    with time_machine.travel(timezone.now() + timedelta(days=60), tick=True):
        assert prune().events == 1
        first, second = AuditTombstone.objects.filter(stream="system").order_by("from_seq")
        assert (first.from_seq, first.through_seq) == (1, 2)
        assert (second.from_seq, second.through_seq) == (3, 3)
        assert second.prev_hash == first.hash
        # The stream goes on after its tombstones: the first pass's audit.pruned event, and
        # the next, follow them; the second pass does not prune its own record.
        remaining = AuditEvent.objects.filter(stream="system").order_by("seq")
        assert [e.kind for e in remaining] == ["connection.deleted", "audit.pruned", "audit.pruned"]
        assert verified().ok


def test_a_pruned_run_stream_goes_on_from_its_tombstone() -> None:
    old_run(1)
    prune()
    with transaction.atomic():
        later = record_event(stream="run:1", kind="audit.bundle_exported", actor="user:a", run_id=1)
    tombstone = AuditTombstone.objects.get(stream="run:1")
    assert (later.seq, later.prev_hash) == (4, tombstone.hash)
    assert verified().ok


def test_pruning_refuses_a_range_that_does_not_verify() -> None:
    old = old_run(1)
    tamper("UPDATE {table} SET kind = 'run.failed' WHERE id = %s", [old[1].pk])
    result = prune()
    assert result.events == 0
    assert result.refused == [("run:1", "seq 2 does not verify; run audit_verify")]
    assert AuditEvent.objects.filter(stream="run:1").count() == 3
    assert not AuditTombstone.objects.exists()
    recorded = AuditEvent.objects.get(stream="system", kind="audit.pruned")
    assert recorded.payload["refused"] == ["run:1: seq 2 does not verify; run audit_verify"]


def test_a_pass_that_prunes_nothing_records_nothing() -> None:
    write("run:1", "run.created", days_ago=3)
    assert prune().events == 0
    assert not AuditEvent.objects.filter(kind="audit.pruned").exists()


# Tampering with what retention left


def test_deleting_a_tombstone_shows() -> None:
    old_run(1)
    prune()
    tamper("DELETE FROM {tombstones} WHERE stream = 'run:1'")
    problem(stream="run:1", seq=1, reason="the stream head is at seq 3 but the last event is seq 0")


def test_deleting_the_earlier_of_two_tombstones_shows() -> None:
    write("system", "connection.created", "connection.updated", days_ago=700)
    write("system", "connection.tested", days_ago=380)
    prune()
    with time_machine.travel(timezone.now() + timedelta(days=60), tick=True):
        prune()
        first = AuditTombstone.objects.filter(stream="system").order_by("from_seq").first()
        assert first is not None
        tamper("DELETE FROM {tombstones} WHERE id = %s", [first.pk])
        problem(stream="system", seq=3, reason="a tombstone was deleted")


def test_an_altered_tombstone_shows() -> None:
    old_run(1)
    old_run(2)
    prune()
    tombstone = AuditTombstone.objects.get(stream="run:2")
    tamper("UPDATE {tombstones} SET event_count = 2 WHERE id = %s", [tombstone.pk])
    problem(stream="run:2", seq=1, tombstone=tombstone.pk, reason="signature does not verify")


def test_events_deleted_behind_a_forged_tombstone_show(settings: Any) -> None:
    events = old_run(1)
    make_digest()
    # An attacker deletes the run's events and writes a tombstone signed with their own key.
    forged = AuditTombstone(stream="run:1", from_seq=1, through_seq=3, prev_hash=events[0].prev_hash,
                            hash=events[-1].hash, event_count=3, first_at=events[0].created_at,
                            last_at=events[-1].created_at, pruned_at=timezone.now(), reason="x")  # fmt: skip
    own_key = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    from audit import signing

    real_key = settings.BULWARK_AUDIT_SIGNING_KEY
    settings.BULWARK_AUDIT_SIGNING_KEY = own_key
    signing.signing_key.cache_clear()
    try:
        sign_tombstone(forged)
    finally:
        settings.BULWARK_AUDIT_SIGNING_KEY = real_key
        signing.signing_key.cache_clear()
    forged.save()
    tamper("DELETE FROM {table} WHERE stream = 'run:1'")
    problem(stream="run:1", seq=1, reason="which is not trusted here")


def test_pruning_refuses_a_stream_rewritten_since_a_digest_signed_it() -> None:
    events = old_run(1)
    make_digest()  # signs run:1 at seq 3 with its real hash
    # Rewritten with fresh hashes, so its own chain verifies and pruning accepts it.
    prev = events[0].prev_hash
    for event in events:
        event.prev_hash = prev
        event.kind = "run.failed" if event.seq == 3 else event.kind
        event.hash = event.compute_hash()
        tamper("UPDATE {table} SET kind = %s, prev_hash = %s, hash = %s WHERE id = %s",
               [event.kind, event.prev_hash, event.hash, event.pk])  # fmt: skip
        prev = event.hash
    tamper("UPDATE {heads} SET hash = %s WHERE stream = 'run:1'", [prev])
    # Its own chain verifies, but not against digest #1: nothing is pruned, so nothing
    # signed ever vouches for the rewrite.
    result = prune()
    assert result.events == 0
    assert result.refused == [("run:1", "seq 3 is not the event a digest signed; run audit_verify")]
    problem(stream="run:1", seq=3, digest=1, reason="the stream was rewritten at or before")


def test_a_tombstone_over_a_rewritten_stream_shows_against_the_digest() -> None:
    """Were a rewritten range pruned anyway, the digest's signed head still catches it."""
    events = old_run(1)
    make_digest()
    forged = AuditTombstone(stream="run:1", from_seq=1, through_seq=3, prev_hash=events[0].prev_hash,
                            hash="0" * 64, event_count=3, first_at=events[0].created_at,
                            last_at=events[-1].created_at, pruned_at=timezone.now(), reason="x")  # fmt: skip
    sign_tombstone(forged)  # as retention would have, had it not checked the digests
    forged.save()
    tamper("DELETE FROM {table} WHERE stream = 'run:1'")
    tamper("UPDATE {heads} SET hash = %s WHERE stream = 'run:1'", ["0" * 64])
    problem(stream="run:1", seq=3, digest=1, reason="the stream was rewritten before it was pruned")


def test_a_tombstone_without_its_head_shows() -> None:
    old_run(1)
    prune()
    tamper("DELETE FROM {heads} WHERE stream = 'run:1'")
    problem(stream="run:1", reason="a tombstone but no head row")


# Holds


def test_a_hold_needs_a_trail_a_reason_and_no_other_hold() -> None:
    with pytest.raises(HoldError, match="run 5 has no audit trail"):
        place_hold(5, reason="case", actor="user:a")
    write("run:5", "run.created")
    with pytest.raises(HoldError, match="a reason is required"):
        place_hold(5, reason="  ", actor="user:a")
    place_hold(5, reason="case 1", actor="user:a")
    with pytest.raises(HoldError, match="already on legal hold"):
        place_hold(5, reason="case 2", actor="user:a")
    with pytest.raises(HoldError, match="run 6 is not on legal hold"):
        release_hold(6, reason="done", actor="user:a")
    kinds = list(AuditEvent.objects.filter(stream="run:5").values_list("kind", "actor", "payload"))
    assert kinds[-1] == ("audit.legal_hold_placed", "user:a", {"reason": "case 1"})


def test_a_pruned_run_cannot_be_held() -> None:
    old_run(3)
    prune()
    with pytest.raises(HoldError, match="already pruned"):
        place_hold(3, reason="too late", actor="user:a")


# Bundles


def bundle_of(stream: str, tmp_path: Path) -> Path:
    path = tmp_path / "bundle.zip"
    with path.open("wb") as target:
        write_bundle(target, stream=stream, subject={"stream": stream}, files={}, created_by="t")
    return path


def test_a_bundle_of_a_pruned_stream_verifies_offline_from_its_tombstones(tmp_path: Path) -> None:
    write("system", "connection.created", "connection.updated", days_ago=700)
    write("system", "connection.tested", days_ago=100)
    make_digest()
    prune()
    path = bundle_of("system", tmp_path)
    with zipfile.ZipFile(path) as bundle:
        tombstones = json.loads(bundle.read("tombstones.json"))
        seqs = [json.loads(line)["seq"] for line in bundle.read("events.jsonl").splitlines()]
    assert [t["document"]["through_seq"] for t in tombstones] == [2]
    assert seqs == [3, 4]  # connection.tested, then the pass's audit.pruned
    result = verify_bundle(path)
    assert result.ok, result.problem


def test_a_bundle_whose_tombstones_were_altered_or_dropped_does_not_verify(tmp_path: Path) -> None:
    old_run(1)
    prune()
    with transaction.atomic():
        record_event(stream="run:1", kind="audit.bundle_exported", actor="t", run_id=1)
    path = bundle_of("run:1", tmp_path)
    assert verify_bundle(path).ok
    # Even with the manifest signed again, as the installation itself could:
    tombstones = json.loads(read(path, "tombstones.json"))
    tombstones[0]["document"]["reason"] = "something else"
    resign(path, **{"tombstones.json": json.dumps(tombstones).encode()})
    assert verify_bundle(path).problem == (
        "tombstones.json: the tombstone for run:1 seq 1..3: its signature does not verify "
        "(the tombstone was forged or altered)"
    )
    resign(path, **{"tombstones.json": b"[]"})
    assert verify_bundle(path).problem == (
        "events.jsonl line 1 (run:1 seq 4): expected seq 1 (an event is missing or out of order)"
    )


def test_zero_turns_digests_and_retention_off(tmp_path: Path) -> None:
    env = {**os.environ, "BULWARK_AUDIT_DIGEST_SECONDS": "0", "BULWARK_AUDIT_RETENTION_DAYS": "0",
           "DJANGO_SETTINGS_MODULE": "config.settings", "BULWARK_VAR_DIR": str(tmp_path)}  # fmt: skip
    code = ("from django.conf import settings; "
            "print(settings.BULWARK_AUDIT_DIGEST_SECONDS, settings.BULWARK_AUDIT_RETENTION_DAYS)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=False, cwd=Path(__file__).parents[2])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]


def test_deleting_a_holds_row_releases_nothing() -> None:
    old_run(7, days_ago=900)
    with time_machine.travel(timezone.now() - timedelta(days=800), tick=True):
        place_hold(7, reason="case 9", actor="user:auditor")
    tamper("DELETE FROM audit_legalhold")
    result = prune()
    assert (result.events, result.held) == (0, 1)
    assert AuditEvent.objects.filter(stream="run:7").count() == 4


def test_a_batch_is_recorded_with_what_it_pruned_even_if_a_later_batch_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from audit import retention

    monkeypatch.setattr(retention, "STREAMS_PER_BATCH", 1)
    old_run(1)
    old_run(2)
    calls: list[set[int]] = []

    def keep(run_ids: set[int]) -> set[int]:
        calls.append(run_ids)
        if len(calls) == 2:
            raise RuntimeError("the engine's database went away")
        return set()

    with pytest.raises(RuntimeError, match="went away"):
        prune(keep)
    assert not AuditEvent.objects.filter(stream="run:1").exists()
    assert AuditEvent.objects.filter(stream="run:2").count() == 3
    recorded = AuditEvent.objects.get(kind="audit.pruned")
    assert (recorded.payload["streams"], recorded.payload["events"]) == (1, 3)


def test_a_range_no_digest_covers_yet_is_not_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit import retention

    monkeypatch.setattr(retention, "make_digest", lambda: None)
    old_run(1)
    result = prune()
    assert result.events == 0
    assert result.refused == [("run:1", "no digest lists seq 3 or later yet; run audit_digest")]


def test_a_dry_run_changes_nothing() -> None:
    old_run(1)
    result = prune_audit(timezone.now() - RETENTION, keep_runs=keep_none, reason="t", dry_run=True)
    assert (result.streams, result.events) == (1, 3)
    assert AuditEvent.objects.filter(stream="run:1").count() == 3
    assert not AuditTombstone.objects.exists()
    assert not AuditEvent.objects.filter(kind="audit.pruned").exists()
