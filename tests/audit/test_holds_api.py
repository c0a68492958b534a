"""Legal holds and tombstones over the API: auditors place and release holds, with reasons
that land in the run's trail; everyone else is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.events import record_event
from audit.models import AuditEvent, LegalHold
from audit.retention import prune_audit
from tests.conftest import client_for

pytestmark = pytest.mark.urls("tests.audit.urls")

URL = "/api/v1/audit/legal-holds/"


@pytest.fixture
def run_5(db: None) -> None:
    with transaction.atomic():
        record_event(stream="run:5", kind="run.created", actor="user:bob", run_id=5)


def test_an_auditor_places_lists_and_releases_a_hold(run_5: None, carol: User) -> None:
    api = client_for(carol)
    placed = api.post(URL, {"run_id": 5, "reason": "matter 2026-17"}, format="json")
    assert placed.status_code == 201, placed.json()
    assert placed.json()["placed_by"] == "user:carol"
    assert [h["run_id"] for h in api.get(URL).json()["results"]] == [5]
    assert api.get(f"{URL}5/").json()["reason"] == "matter 2026-17"
    released = api.post(f"{URL}5/release/", {"reason": "matter closed"}, format="json")
    assert released.status_code == 204
    assert not LegalHold.objects.exists()
    trail = AuditEvent.objects.filter(stream="run:5").order_by("seq")
    assert [(e.kind, e.actor, e.payload.get("reason")) for e in trail] == [
        ("run.created", "user:bob", None),
        ("audit.legal_hold_placed", "user:carol", "matter 2026-17"),
        ("audit.legal_hold_released", "user:carol", "matter closed"),
    ]


def test_bad_holds_say_what_is_wrong(run_5: None, carol: User) -> None:
    api = client_for(carol)
    assert api.post(URL, {"run_id": 5}, format="json").json()["errors"][0]["path"] == "reason"
    missing = api.post(URL, {"run_id": 6, "reason": "x"}, format="json")
    assert missing.status_code == 400
    assert "run 6 has no audit trail to hold" in str(missing.json())
    api.post(URL, {"run_id": 5, "reason": "x"}, format="json")
    again = api.post(URL, {"run_id": 5, "reason": "y"}, format="json")
    assert again.status_code == 400
    assert "already on legal hold" in str(again.json())
    assert LegalHold.objects.get().reason == "x"
    not_held = api.post(f"{URL}6/release/", {"reason": "done"}, format="json")
    assert not_held.status_code == 404
    no_reason = api.post(f"{URL}5/release/", {}, format="json")
    assert no_reason.status_code == 400
    assert LegalHold.objects.exists()


def test_only_auditors_may_hold(run_5: None, bob: User, dave: User) -> None:
    for user in (bob, dave):
        response = client_for(user).post(URL, {"run_id": 5, "reason": "x"}, format="json")
        assert response.status_code == 403
    assert not LegalHold.objects.exists()


def test_tombstones_are_listed_by_stream(carol: User) -> None:
    for stream in ("run:1", "run:2"):
        with transaction.atomic():
            record_event(stream=stream, kind="run.created", actor="system")
    prune_audit(timezone.now() + timedelta(seconds=1), keep_runs=lambda ids: set(), reason="t")
    rows = client_for(carol).get("/api/v1/audit/tombstones/?stream=run:2").json()["results"]
    assert [(r["stream"], r["from_seq"], r["through_seq"], r["event_count"]) for r in rows] == [
        ("run:2", 1, 1, 1)
    ]
    assert rows[0]["signature"]
