"""Legal holds: a run's audit trail kept past retention until the hold is released.

Placing and releasing a hold are events of the run's own stream, so the trail says who
held it, when and why; and because appending locks the stream's head, a hold placed
while retention prunes is either seen by the pruning pass or waits for it.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import record_event
from audit.models import AuditEvent, AuditStreamHead, AuditTombstone, LegalHold

MAX_REASON = 500


class HoldError(ValueError):
    """A hold that cannot be placed or released; the message says why."""


def place_hold(run_id: int, *, reason: str, actor: str) -> LegalHold:
    """Hold a run's trail; refused for a run with no trail, or one already pruned or held."""
    reason = _reason(reason)
    stream = f"run:{run_id}"
    with transaction.atomic():
        # Lock the head first, as retention does: then a pass pruning this run either
        # finished before (and the checks below see it) or waits for this hold.
        if AuditStreamHead.objects.select_for_update().filter(stream=stream).first() is None:
            raise HoldError(f"run {run_id} has no audit trail to hold")
        if (
            AuditTombstone.objects.filter(stream=stream).exists()
            and not AuditEvent.objects.filter(stream=stream).exists()
        ):
            raise HoldError(
                f"run {run_id}'s audit trail was already pruned; nothing is left to hold"
            )
        try:
            with transaction.atomic():
                hold = LegalHold.objects.create(
                    run_id=run_id, reason=reason, placed_by=actor, placed_at=timezone.now()
                )
        except IntegrityError:
            raise HoldError(f"run {run_id} is already on legal hold") from None
        record_event(stream=stream, kind="audit.legal_hold_placed", actor=actor,
                     payload={"reason": reason}, run_id=run_id)  # fmt: skip
    return hold


def release_hold(run_id: int, *, reason: str, actor: str) -> None:
    """Release a run's hold; its trail is then pruned as any other when it is old enough."""
    reason = _reason(reason)
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().filter(run_id=run_id).first()
        if hold is None:
            raise HoldError(f"run {run_id} is not on legal hold")
        record_event(
            stream=f"run:{run_id}", kind="audit.legal_hold_released", actor=actor,
            payload={"reason": reason, "placed_by": hold.placed_by,
                     "placed_reason": hold.reason}, run_id=run_id,
        )  # fmt: skip
        hold.delete()


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise HoldError("a reason is required (for example the case or matter number)")
    if len(reason) > MAX_REASON:
        raise HoldError(f"the reason is {len(reason)} characters; at most {MAX_REASON}")
    return reason
