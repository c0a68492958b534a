"""Audit retention as the engine runs it: `audit_prune` and the scheduler's pass prune
finished runs' old trails, keep open runs', and a pruned run's evidence still verifies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.bundle_verify import verify_bundle
from audit.models import AuditDigest, AuditEvent, AuditTombstone
from audit.signing import current_public_key
from audit.verify import verify_chains
from core import audit_retention, reconciler
from core.dispatch import InlineDispatcher
from core.models import Run
from tests.conftest import client_for
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def runs(bob: User, inline_dispatch: InlineDispatcher) -> list[Run]:
    published_version(definition(echo("a"), echo("b", "a"), name="retained"))
    made = []
    for _ in range(2):
        response = client_for(bob).post("/api/v1/runs/", {"playbook": "retained"}, format="json")
        assert response.status_code == 201, response.json()
        inline_dispatch.drain()
        made.append(Run.objects.get(pk=response.json()["id"]))
    # The second is still open, as a run waiting on a person for a year would be.
    Run.objects.filter(pk=made[1].pk).update(status="waiting_approval", finished_at=None)
    return made


def later(days: int) -> Any:
    return time_machine.travel(timezone.now() + timedelta(days=days), tick=True)


def trail(run: Run) -> int:
    return AuditEvent.objects.filter(stream=f"run:{run.pk}").count()


def test_audit_prune_prunes_finished_runs_and_keeps_open_ones(
    runs: list[Run], capsys: pytest.CaptureFixture[str]
) -> None:
    done, waiting = runs
    before = trail(done)
    with later(500):
        call_command("audit_prune", "--dry-run")
        out = capsys.readouterr().out
        assert out.startswith("audit: would prune ")
        assert "kept 0 for legal holds and 1 open runs" in out
        assert trail(done) == before
        assert not AuditTombstone.objects.exists()
        # It leaves nothing behind: no digest, no audit.pruned event.
        assert not AuditDigest.objects.exists()
        assert not AuditEvent.objects.filter(kind="audit.pruned").exists()
        call_command("audit_prune")
        assert capsys.readouterr().out.startswith("audit: pruned ")
    assert trail(done) == 0
    assert trail(waiting) > 0
    tombstone = AuditTombstone.objects.get(stream=f"run:{done.pk}")
    assert tombstone.event_count == before
    assert tombstone.reason == "retention: older than 400 days"
    assert AuditEvent.objects.get(kind="audit.pruned").actor == "cli:audit_prune"
    assert verify_chains().ok


def test_a_pruned_runs_evidence_bundle_still_verifies(
    runs: list[Run], carol: User, tmp_path: Path
) -> None:
    done = runs[0]
    with later(500):
        call_command("audit_prune")
        response = client_for(carol).get(f"/api/v1/runs/{done.pk}/evidence/")
    assert response.status_code == 200
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"".join(response.streaming_content))
    result = verify_bundle(path, current_public_key())
    assert result.ok, result.problem
    assert result.events_checked == 1  # the export itself, after the tombstone


def test_audit_prune_says_when_retention_is_off(settings: Any) -> None:
    settings.BULWARK_AUDIT_RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="retention is off"):
        call_command("audit_prune")
    assert audit_retention.prune_expired() is None


def test_the_scheduler_prunes_once_per_interval(
    monkeypatch: pytest.MonkeyPatch, settings: Any, db: None
) -> None:
    passes: list[object] = []
    clock = [1000.0]
    monkeypatch.setattr(audit_retention, "_next_pass", None)
    monkeypatch.setattr(audit_retention, "prune_expired", lambda: passes.append(1))
    monkeypatch.setattr(audit_retention.time, "monotonic", lambda: clock[0])
    settings.BULWARK_AUDIT_RETENTION_CHECK_SECONDS = 3600
    reconciler.sweep()
    reconciler.sweep()
    assert passes == [1]
    clock[0] += 3599
    reconciler.sweep()
    assert passes == [1]
    clock[0] += 1
    reconciler.sweep()
    assert passes == [1, 1]


def test_a_failed_pass_is_tried_again_after_five_minutes_not_an_hour(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    clock, calls = [1000.0], []

    def failing() -> None:
        calls.append(clock[0])
        raise RuntimeError("database went away")

    monkeypatch.setattr(audit_retention, "_next_pass", None)
    monkeypatch.setattr(audit_retention, "prune_expired", failing)
    monkeypatch.setattr(audit_retention.time, "monotonic", lambda: clock[0])
    settings.BULWARK_AUDIT_RETENTION_CHECK_SECONDS = 3600
    with pytest.raises(RuntimeError):
        audit_retention.prune_if_due()
    clock[0] += 299
    assert audit_retention.prune_if_due() is None  # not at every sweep
    clock[0] += 1
    with pytest.raises(RuntimeError):
        audit_retention.prune_if_due()
    assert calls == [1000.0, 1300.0]
