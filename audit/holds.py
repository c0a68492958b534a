"""Legal holds: a run's audit trail kept past retention until the hold is released.

Placing and releasing a hold are events of the run's own stream, so the trail says who
held it, when and why, and retention reads holds from those events as well as from the
table (audit.retention.held_runs). Holds change under one lock that each retention batch
also takes, so a hold placed while a batch is pruned waits for it, then holds.
"""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.events import record_event
from audit.models import AuditEvent, AuditStreamHead, AuditTombstone, LegalHold

MAX_REASON = 500
PLACED = "audit.legal_hold_placed"
RELEASED = "audit.legal_hold_released"
HOLD_KINDS = (PLACED, RELEASED)
# The advisory lock holds and retention share (PostgreSQL; SQLite has one writer anyway).
_LOCK_KEY = 0x62756C7761726B  # "bulwark"


def hold_lock() -> None:
    """Take the holds' lock for the rest of the caller's transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


class HoldError(ValueError):
    """A hold that cannot be placed or released; the message says why."""


def place_hold(run_id: int, *, reason: str, actor: str) -> LegalHold:
    """Hold a run's trail; refused for a run with no trail, or one already pruned or held."""
    reason = _reason(reason)
    stream = f"run:{run_id}"
    with transaction.atomic():
        hold_lock()
        if not AuditStreamHead.objects.filter(stream=stream).exists():
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
        hold_lock()
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
