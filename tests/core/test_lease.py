"""Leases: renewed on the database clock; a lease taken over fences its attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.dispatch import InlineDispatcher
from core.execution import claim_unit
from core.lease import LeaseKeeper
from core.models import Attempt, StepRun
from core.runs import start_run
from integrations.context import ActionContext
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)


def _context(unit: StepRun) -> ActionContext:
    return ActionContext(run_id=unit.run_id, step_id=unit.step_id, item_index=None, attempt=unit.attempts,
                         idempotency_key=unit.idempotency_key, timeout_seconds=60)  # fmt: skip


def _claimed_unit(inline_dispatch: InlineDispatcher) -> StepRun:
    version = published_version(definition(echo("a")))
    start_run(playbook=version.playbook, actor="system:test")
    unit_id, token = inline_dispatch.pending.popleft()
    assert claim_unit(unit_id, token, worker="w") is not None
    return StepRun.objects.get(pk=unit_id)


def test_a_heartbeat_extends_the_lease_of_a_held_attempt(inline_dispatch: InlineDispatcher) -> None:
    unit = _claimed_unit(inline_dispatch)
    StepRun.objects.filter(pk=unit.pk).update(
        lease_expires_at=timezone.now() + timedelta(seconds=1)
    )
    keeper = LeaseKeeper(lease_seconds=120)
    ctx = _context(unit)
    keeper.hold(unit.pk, unit.attempts, ctx)
    keeper.stop()
    keeper.renew_once()
    renewed = StepRun.objects.get(pk=unit.pk).lease_expires_at
    assert renewed > timezone.now() + timedelta(seconds=100)
    assert not ctx.fenced.is_set()


def test_after_release_all_no_lease_is_renewed(inline_dispatch: InlineDispatcher) -> None:
    unit = _claimed_unit(inline_dispatch)
    expires = timezone.now() + timedelta(seconds=1)
    StepRun.objects.filter(pk=unit.pk).update(lease_expires_at=expires)
    keeper = LeaseKeeper(lease_seconds=120)
    keeper.hold(unit.pk, unit.attempts, _context(unit))
    keeper.stop()
    keeper.release_all()
    keeper.renew_once()
    assert StepRun.objects.get(pk=unit.pk).lease_expires_at == expires


def test_an_attempt_whose_lease_was_taken_over_is_fenced(inline_dispatch: InlineDispatcher) -> None:
    unit = _claimed_unit(inline_dispatch)
    keeper = LeaseKeeper(lease_seconds=120)
    ctx = _context(unit)
    keeper.hold(unit.pk, unit.attempts, ctx)
    keeper.stop()
    StepRun.objects.filter(pk=unit.pk).update(attempts=unit.attempts + 1)  # reclaimed elsewhere
    keeper.renew_once()
    assert ctx.fenced.is_set()


def test_an_attempt_that_finished_while_being_renewed_is_released_quietly(
    inline_dispatch: InlineDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    unit = _claimed_unit(inline_dispatch)
    keeper = LeaseKeeper(lease_seconds=120)
    ctx = _context(unit)
    keeper.hold(unit.pk, unit.attempts, ctx)
    keeper.stop()
    # The worker records the result; its release comes just after the heartbeat's look.
    Attempt.objects.create(unit=unit, number=unit.attempts, outcome="succeeded",
                           idempotency_key=unit.idempotency_key, started_at=timezone.now())  # fmt: skip
    StepRun.objects.filter(pk=unit.pk).update(status="succeeded")
    keeper.renew_once()
    assert not ctx.fenced.is_set()
    assert "lost its lease" not in caplog.text
    assert keeper._held == {}


def test_an_attempt_the_scheduler_judged_lost_is_fenced(inline_dispatch: InlineDispatcher) -> None:
    unit = _claimed_unit(inline_dispatch)
    keeper = LeaseKeeper(lease_seconds=120)
    ctx = _context(unit)
    keeper.hold(unit.pk, unit.attempts, ctx)
    keeper.stop()
    Attempt.objects.create(unit=unit, number=unit.attempts, outcome="lost",
                           idempotency_key=unit.idempotency_key, started_at=timezone.now())  # fmt: skip
    StepRun.objects.filter(pk=unit.pk).update(status="queued")  # requeued, not yet claimed
    keeper.renew_once()
    assert ctx.fenced.is_set()


def test_losing_the_database_for_most_of_a_lease_fences_every_held_attempt(
    inline_dispatch: InlineDispatcher,
) -> None:
    unit = _claimed_unit(inline_dispatch)
    exits = []
    keeper = LeaseKeeper(lease_seconds=1, on_lost_database=lambda: exits.append(True))
    ctx = _context(unit)
    keeper.hold(unit.pk, unit.attempts, ctx)
    keeper.stop()
    keeper._last_ok -= 5  # the last successful renewal was long ago
    keeper._fence_all("test")
    assert ctx.fenced.is_set()
    assert exits == [True]


def test_an_attempt_past_its_timeout_fails_as_transient_and_is_retried(
    inline_dispatch: InlineDispatcher,
) -> None:
    slow = {"id": "slow", "action": "util.sleep", "with": {"seconds": 5}, "timeout": "200ms",
            "retry": {"attempts": 2, "backoff": "10s"}}  # fmt: skip
    version = published_version(definition(slow))
    run = start_run(playbook=version.playbook, actor="system:test")
    inline_dispatch.drain()
    unit = StepRun.objects.get(run=run)
    assert unit.status == "retry_wait"
    assert unit.error["kind"] == "timeout"
    assert unit.error["retryable"] is True


def test_an_attempt_that_overruns_its_timeout_is_no_longer_renewed(
    inline_dispatch: InlineDispatcher,
) -> None:
    unit = _claimed_unit(inline_dispatch)
    keeper = LeaseKeeper(lease_seconds=1)
    ctx = _context(unit)
    ctx.timeout_seconds = 0.0
    ctx.started_at -= 5  # started five seconds ago with no time allowed
    keeper.hold(unit.pk, unit.attempts, ctx)
    keeper.stop()
    before = StepRun.objects.get(pk=unit.pk).lease_expires_at
    keeper.renew_once()
    assert ctx.fenced.is_set()
    assert StepRun.objects.get(pk=unit.pk).lease_expires_at == before


def test_release_all_waits_for_a_renewal_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    keeper = LeaseKeeper(lease_seconds=120)
    entered, finish, released = threading.Event(), threading.Event(), threading.Event()

    def slow_renewal() -> None:
        entered.set()
        finish.wait(5)

    monkeypatch.setattr(keeper, "_renew_held", slow_renewal)
    renewing = threading.Thread(target=keeper.renew_once)
    renewing.start()
    assert entered.wait(5)
    releasing = threading.Thread(target=lambda: (keeper.release_all(), released.set()))
    releasing.start()
    assert not released.wait(0.3)  # the renewal is still running
    finish.set()
    assert released.wait(5)
    renewing.join(5)
    releasing.join(5)
