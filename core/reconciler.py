"""The scheduler's periodic sweep: the database, not the broker, says what must happen.

- retries whose time has come are queued;
- running attempts whose lease expired are recovered: queued again, or left
  `needs_attention` when their attempts are spent or a repeat is unsafe;
- queued units whose message seems lost (Redis restarted or flushed, a process died
  between COMMIT and send) are sent again — a duplicate is harmless, the claim decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from audit.digests import digest_if_due
from audit.events import NewEvent
from core.approvals.notify import resend_lost_notices
from core.approvals.slack import forget_old_interactions
from core.audit_retention import prune_if_due
from core.dispatch import Message, get_dispatcher
from core.engine.events import Decision, Nudge, RetryDue, UnitLost
from core.engine.plan import RunPlan
from core.engine.state import TIMED_UNIT, RunState, UnitKey, UnitStatus
from core.models import Attempt, ReconcilerCounter, Run, StepRun
from core.replay import start_due_replays
from core.transitions import LoadedUnit, apply_event, drain_wakeups

log = logging.getLogger(__name__)
ACTOR = "system:scheduler"
BATCH = 500


@dataclass
class SweepResult:
    retries_fired: int = 0
    leases_recovered: int = 0
    results_applied: int = 0
    redispatched: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.retries_fired + self.leases_recovered + self.redispatched + self.results_applied


def _count(kind: str, amount: int) -> None:
    if amount:
        with transaction.atomic():
            counter, _ = ReconcilerCounter.objects.select_for_update().get_or_create(kind=kind)
            ReconcilerCounter.objects.filter(pk=counter.pk).update(count=F("count") + amount)


def fire_due_retries(result: SweepResult) -> None:
    due = StepRun.objects.filter(status__in=TIMED_UNIT, next_attempt_at__lte=timezone.now())
    for unit_id, run_id, step_id, item, phase in due.values_list(
        "id", "run_id", "step_id", "item_index", "phase"
    )[:BATCH]:
        key = UnitKey(step_id, item, phase)
        try:
            if apply_event(run_id, RetryDue(key), actor=ACTOR) is not None:
                result.retries_fired += 1
        except Exception as exc:  # one bad run must not stop the sweep for all the others
            log.exception("reconciler: retry of unit %s failed", unit_id)
            result.errors.append(f"retry of unit {unit_id}: {exc}")


def _lost_attempt_events(run_id: int, unit_id: int, key: UnitKey, attempts: int) -> list[NewEvent]:
    """Record the attempt as lost and tell the audit trail who ran it and since when."""
    unit = StepRun.objects.get(pk=unit_id)
    error = {"kind": "worker_lost", "message": "the lease expired: the worker died or stalled"}
    started = unit.attempt_started_at or timezone.now()
    Attempt.objects.get_or_create(
        unit_id=unit_id,
        number=attempts,
        defaults={"attempt_group": unit.attempt_group, "outcome": Attempt.Outcome.LOST,
                  "worker": unit.lease_owner, "idempotency_key": unit.idempotency_key,
                  "started_at": started, "finished_at": timezone.now(), "error": error},
    )  # fmt: skip
    payload = {
        "unit": str(key),
        "attempt": attempts,
        "worker": unit.lease_owner or None,
        "started_at": started.isoformat(),
        "idempotency_key": unit.idempotency_key,
        "error": error,
    }
    return [
        NewEvent(stream=f"run:{run_id}", kind="attempt.lost", actor=ACTOR, payload=payload,
                 run_id=run_id, step_id=key.step),
    ]  # fmt: skip


def _recover(run_id: int, unit_id: int, key: UnitKey, attempts: int) -> bool:
    def still_expired(state: RunState, loaded: dict[UnitKey, LoadedUnit]) -> bool:
        return StepRun.objects.filter(
            pk=unit_id, status=UnitStatus.RUNNING, attempts=attempts, result__isnull=True,
            lease_expires_at__lt=Now(),
        ).exists()  # fmt: skip

    def mark_lost(
        run: Run, plan: RunPlan, decision: Decision, messages: dict[UnitKey, Message]
    ) -> tuple[list[Message], list[NewEvent]]:
        return list(messages.values()), _lost_attempt_events(run_id, unit_id, key, attempts)

    decision = apply_event(
        run_id, UnitLost(key), actor=ACTOR, precondition=still_expired, before_commit=mark_lost
    )
    return decision is not None


def recover_expired_leases(result: SweepResult) -> None:
    """Attempts whose lease ran out with no result: their worker is gone.

    Every claim sets the lease in the same statement, so a running unit without one is not
    an attempt at all but a `for_each` step waiting for its items: never "recovered".
    """
    expired = StepRun.objects.filter(
        status=UnitStatus.RUNNING, result__isnull=True, lease_expires_at__lt=Now()
    )
    rows = expired.values_list("id", "run_id", "step_id", "item_index", "phase", "attempts")
    for unit_id, run_id, step_id, item, phase, attempts in rows[:BATCH]:
        key = UnitKey(step_id, item, phase)
        try:
            if _recover(run_id, unit_id, key, attempts):
                result.leases_recovered += 1
                log.warning(
                    "run %s: recovered %s after its lease expired (attempt %s)",
                    run_id,
                    key,
                    attempts,
                )
        except Exception as exc:  # one bad run must not stop the sweep for all the others
            log.exception("reconciler: lease recovery of unit %s failed", unit_id)
            result.errors.append(f"lease recovery of unit {unit_id}: {exc}")


def apply_stranded_results(result: SweepResult) -> None:
    """Results a worker recorded but did not get to apply (it died in between)."""
    stranded = StepRun.objects.filter(
        status=UnitStatus.RUNNING, result__isnull=False, lease_expires_at__lt=Now()
    ).values_list("run_id", flat=True)
    for run_id in sorted(set(stranded[:BATCH])):
        try:
            apply_event(run_id, Nudge(), actor=ACTOR)
            result.results_applied += 1
        except Exception as exc:  # one bad run must not stop the sweep for all the others
            log.exception("reconciler: applying results of run %s failed", run_id)
            result.errors.append(f"applying results of run {run_id}: {exc}")


def redispatch_lost_messages(result: SweepResult) -> None:
    cutoff = timezone.now() - timedelta(seconds=settings.BULWARK_REDISPATCH_SECONDS)
    stale = list(
        StepRun.objects.filter(status=UnitStatus.QUEUED, queued_at__lt=cutoff).values_list(
            "id", "dispatch_token", "run_id"
        )[:BATCH]
    )
    if not stale:
        return
    if waiting := get_dispatcher().backlog():
        # Messages are queued, so these are most likely waiting their turn, not lost: re-
        # sending them would only pile duplicates on the backlog. Once it drains, any unit
        # still queued is re-sent.
        log.info(
            "%d queued units look stale, but %d messages are waiting: not re-sending",
            len(stale),
            waiting,
        )
        return
    by_run: dict[int, list[Message]] = {}
    for unit_id, token, run_id in stale:
        # Move queued_at so the same unit is re-sent at most once per interval.
        if StepRun.objects.filter(
            pk=unit_id, status=UnitStatus.QUEUED, dispatch_token=token
        ).update(queued_at=timezone.now()):
            by_run.setdefault(run_id, []).append((unit_id, token))
    for run_id, messages in by_run.items():
        # As when they were queued: a wide fan-out gets drain wake-ups, not a message each.
        if len(messages) >= settings.BULWARK_DRAIN_THRESHOLD:
            get_dispatcher().send_drain(run_id, drain_wakeups(len(messages)))
        else:
            get_dispatcher().send(messages)
        result.redispatched += len(messages)
    if by_run:
        log.info("re-sent %d queued units whose messages looked lost", result.redispatched)


def resend_notices(result: SweepResult) -> None:
    """Approval announcements whose message or worker was lost are sent again; digests of
    old Slack interactions are forgotten."""
    try:
        older = timedelta(seconds=settings.BULWARK_REDISPATCH_SECONDS)
        result.redispatched += resend_lost_notices(older_than=older)
        forget_old_interactions()
    except Exception as exc:  # one failing duty must not stop the others
        log.exception("reconciler: re-sending approval notices failed")
        result.errors.append(f"approval notices: {exc}")


def digest_audit(result: SweepResult) -> None:
    """A signed audit digest, when one is due (audit.digests)."""
    try:
        digest_if_due()
    except Exception as exc:  # one failing duty must not stop the others
        log.exception("reconciler: making the audit digest failed")
        result.errors.append(f"audit digest: {exc}")


def prune_audit_trail(result: SweepResult) -> None:
    """A retention pass over the audit trail, when one is due (core.audit_retention)."""
    try:
        pruned = prune_if_due()
    except Exception as exc:  # one failing duty must not stop the others
        log.exception("reconciler: pruning the audit trail failed")
        result.errors.append(f"audit retention: {exc}")
        return
    if pruned is not None and pruned.refused:
        result.errors.extend(f"audit retention refused {s}: {why}" for s, why in pruned.refused)


def start_replays(result: SweepResult) -> None:
    """The re-runs of bulk replays that their rate allows by now (core.replay)."""
    try:
        start_due_replays()
    except Exception as exc:  # one failing duty must not stop the others
        log.exception("reconciler: starting replayed runs failed")
        result.errors.append(f"replays: {exc}")


# Duties other apps add to the scheduler's pass (alert intake re-matches alerts whose
# trigger matching was interrupted); each takes the pass's result to report errors in.
EXTRA_DUTIES: list[Callable[[SweepResult], None]] = []


def sweep() -> SweepResult:
    """One pass of the reconciler."""
    result = SweepResult()
    for duty in EXTRA_DUTIES:
        try:
            duty(result)
        except Exception as exc:  # one failing duty must not stop the others
            log.exception("reconciler: %s failed", getattr(duty, "__name__", duty))
            result.errors.append(f"{getattr(duty, '__name__', duty)}: {exc}")
    fire_due_retries(result)
    resend_notices(result)
    digest_audit(result)
    prune_audit_trail(result)
    start_replays(result)
    apply_stranded_results(result)
    recover_expired_leases(result)
    redispatch_lost_messages(result)
    _count("retry_fired", result.retries_fired)
    _count("lease_expired", result.leases_recovered)
    _count("redispatched", result.redispatched)
    _count("results_applied", result.results_applied)
    for error in result.errors:
        log.warning("reconciler: %s", error)
    return result
