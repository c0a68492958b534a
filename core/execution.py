"""Running one unit: claim it, call its action, record the outcome (fenced), go on.

A claim is one conditional UPDATE: the unit must still be queued under the message's
dispatch token, so a duplicate or stale message changes nothing. The attempt is counted
at the claim. The completion write must match the claimed attempt number (the fencing
token): a "zombie" whose lease was taken over changes nothing, and that is audited.
Completing a unit may queue the next ones; the finishing worker claims one of them in the
same transaction and runs it at once (eager dispatch), the broker carries the rest.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from audit.events import NewEvent, record_event, record_events
from core.dispatch import Message
from core.engine.events import Decision, UnitFailed, UnitSucceeded
from core.engine.plan import RunPlan
from core.engine.state import ErrorInfo, RunState, Unit, UnitKey, UnitStatus
from core.lease import lease_deadline, lease_keeper
from core.models import Attempt, Run, StepRun, idempotency_key
from core.transitions import LoadedUnit, apply_event, plan_for
from integrations.connections import resolve_connection
from integrations.context import ActionContext, ConnectionInfo
from integrations.errors import ActionError
from integrations.http_client import credential_secrets, redact
from integrations.registry import get_action, invoke

log = logging.getLogger(__name__)

# Larger outputs belong in artifacts (a later feature); refuse rather than bloat rows.
MAX_OUTPUT_BYTES = 256 * 1024


def worker_name() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


@dataclass(frozen=True)
class Claimed:
    """An attempt this worker owns."""

    unit_id: int
    run_id: int
    key: UnitKey
    attempt: int
    attempt_group: int
    attempt_row_id: int
    idempotency_key: str
    action: str
    connection: str | None
    timeout: float
    inputs: dict[str, Any]
    started_at: datetime


@dataclass(frozen=True)
class Outcome:
    output: Any = None
    error: ErrorInfo | None = None


def _take(unit_id: int, token: int, worker: str) -> bool:
    """The claim itself: one conditional UPDATE; the attempt is counted here."""
    return bool(
        StepRun.objects.filter(pk=unit_id, status=UnitStatus.QUEUED, dispatch_token=token).update(
            status=UnitStatus.RUNNING,
            attempts=F("attempts") + 1,
            lease_owner=worker,
            lease_expires_at=lease_deadline(),
            started_at=Coalesce("started_at", Now()),
        )
    )


def _start_attempt(
    *, run_id: int, unit_id: int, unit: Unit, attempt: int, plan: RunPlan, worker: str
) -> tuple[Claimed, NewEvent]:
    """Record the claimed attempt; returns it and its audit event (for the caller's batch)."""
    step = plan.step(unit.key.step)
    compensation = step.compensate if unit.key.phase != "main" else None
    action = compensation.action if compensation else step.action or ""
    key = idempotency_key(run_id, str(unit.key), unit.attempt_group)
    row = Attempt.objects.create(
        unit_id=unit_id,
        number=attempt,
        attempt_group=unit.attempt_group,
        worker=worker,
        idempotency_key=key,
        started_at=timezone.now(),
    )
    event = NewEvent(
        stream=f"run:{run_id}",
        kind="attempt.started",
        actor=worker,
        payload={"unit": str(unit.key), "attempt": attempt, "max_attempts": unit.max_attempts,
                 "idempotency_key": key, "action": action},
        run_id=run_id,
        step_id=unit.key.step,
    )  # fmt: skip
    claimed = Claimed(
        unit_id=unit_id,
        run_id=run_id,
        key=unit.key,
        attempt=attempt,
        attempt_group=unit.attempt_group,
        attempt_row_id=row.pk,
        idempotency_key=key,
        action=action,
        connection=step.connection,
        timeout=step.timeout,
        inputs=unit.inputs or {},
        started_at=row.started_at,
    )
    return claimed, event


def claim_unit(unit_id: int, token: int, *, worker: str) -> Claimed | None:
    """Claim a queued unit from a message, in its own transaction; None if not claimable."""
    with transaction.atomic():
        if not _take(unit_id, token, worker):
            return None
        row = StepRun.objects.select_related("run__version").get(pk=unit_id)
        unit = Unit(
            key=UnitKey(row.step_id, row.item_index, row.phase),
            attempt_group=row.attempt_group,
            max_attempts=row.max_attempts,
            inputs=row.inputs,
        )
        claimed, event = _start_attempt(
            run_id=row.run_id, unit_id=row.pk, unit=unit, attempt=row.attempts,
            plan=plan_for(row.run), worker=worker,
        )  # fmt: skip
        record_events([event])
        return claimed


def _connection_for(
    claimed: Claimed, integration: str | None, required: bool
) -> ConnectionInfo | None:
    if integration is None or (claimed.connection is None and not required):
        return None
    return resolve_connection(integration=integration, name=claimed.connection)


def run_claimed(claimed: Claimed) -> Outcome:
    """Call the unit's action with its context; classify whatever happens."""
    spec = get_action(claimed.action)
    if spec is None:
        return Outcome(error=ErrorInfo(f"unknown action {claimed.action!r}", kind="unknown_action"))
    try:
        connection = _connection_for(claimed, spec.connection_integration, spec.connection_required)
    except LookupError as exc:
        return Outcome(error=ErrorInfo(str(exc), kind="connection"))
    secrets = credential_secrets(connection.credentials) if connection else []
    ctx = ActionContext(
        run_id=claimed.run_id,
        step_id=claimed.key.step,
        item_index=None if claimed.key.item < 0 else claimed.key.item,
        attempt=claimed.attempt,
        idempotency_key=claimed.idempotency_key,
        timeout_seconds=claimed.timeout,
        connection=connection,
    )
    keeper = lease_keeper()
    keeper.hold(claimed.unit_id, claimed.attempt, ctx)
    try:
        output = redact(invoke(spec, ctx, claimed.inputs), secrets)
    except ActionError as exc:
        return Outcome(
            error=ErrorInfo(redact(exc.message, secrets), exc.kind, exc.retryable, exc.retry_after)
        )
    except Exception as exc:
        log.exception("action %s crashed in unit %s", claimed.action, claimed.unit_id)
        message = redact(f"{type(exc).__name__}: {exc}", secrets)
        return Outcome(error=ErrorInfo(message, kind="internal_error"))
    finally:
        keeper.release(claimed.unit_id)
    size = len(json.dumps(output, default=str))
    if size > MAX_OUTPUT_BYTES:
        return Outcome(
            error=ErrorInfo(
                f"the output is {size} bytes, over the {MAX_OUTPUT_BYTES}-byte limit",
                kind="output_too_large",
            )
        )
    return Outcome(output=output)


def complete(
    claimed: Claimed, outcome: Outcome, *, worker: str, eager: bool = True
) -> Claimed | None:
    """Record the attempt's outcome (fenced by the attempt number); maybe claim the next unit."""
    event = (
        UnitFailed(claimed.key, outcome.error)
        if outcome.error is not None
        else UnitSucceeded(claimed.key, outcome.output)
    )
    kind = "attempt.failed" if outcome.error is not None else "attempt.succeeded"
    next_claim: list[Claimed] = []

    def still_ours(state: RunState, loaded: dict[UnitKey, LoadedUnit]) -> bool:
        row = loaded.get(claimed.key)
        return (
            row is not None and row.status == UnitStatus.RUNNING and row.attempts == claimed.attempt
        )

    def record_attempt(
        run: Run, decision: Decision, messages: dict[UnitKey, Message]
    ) -> tuple[list[Message], list[NewEvent]]:
        finished = timezone.now()
        Attempt.objects.filter(pk=claimed.attempt_row_id).update(
            outcome=Attempt.Outcome.FAILED if outcome.error else Attempt.Outcome.SUCCEEDED,
            finished_at=finished,
            duration_ms=(finished - claimed.started_at).total_seconds() * 1000,
            error=outcome.error.as_dict() if outcome.error else None,
        )
        remaining = list(messages.items())
        if not eager or not remaining:
            return [m for _, m in remaining], []
        (key, (unit_id, token)), rest = remaining[0], remaining[1:]
        if not _take(unit_id, token, worker):
            return [m for _, m in remaining], []
        unit = decision.state.units[key]
        taken, event = _start_attempt(
            run_id=run.pk, unit_id=unit_id, unit=unit, attempt=unit.attempts + 1,
            plan=plan_for(run), worker=worker,
        )  # fmt: skip
        next_claim.append(taken)
        return [m for _, m in rest], [event]

    payload: dict[str, Any] = {"unit": str(claimed.key), "attempt": claimed.attempt}
    if outcome.error is not None:
        payload["error"] = outcome.error.as_dict()
    attempt_event = NewEvent(
        stream=f"run:{claimed.run_id}",
        kind=kind,
        actor=worker,
        payload=payload,
        run_id=claimed.run_id,
        step_id=claimed.key.step,
    )
    decision = apply_event(
        claimed.run_id,
        event,
        actor=worker,
        precondition=still_ours,
        before_commit=record_attempt,
        extra_events=[attempt_event],
    )
    if decision is None:
        _reject_zombie(claimed, outcome, worker)
        return None
    return next_claim[0] if next_claim else None


def _reject_zombie(claimed: Claimed, outcome: Outcome, worker: str) -> None:
    log.warning(
        "unit %s attempt %s finished after losing its lease; result not recorded",
        claimed.unit_id,
        claimed.attempt,
    )
    with transaction.atomic():
        Attempt.objects.filter(pk=claimed.attempt_row_id).update(
            outcome=Attempt.Outcome.FENCED,
            finished_at=timezone.now(),
            error=outcome.error.as_dict() if outcome.error else None,
        )
        record_event(
            stream=f"run:{claimed.run_id}",
            kind="attempt.fenced_write_rejected",
            actor=worker,
            run_id=claimed.run_id,
            step_id=claimed.key.step,
            payload={
                "unit": str(claimed.key),
                "attempt": claimed.attempt,
                "would_have_recorded": "failed" if outcome.error else "succeeded",
            },
        )


def execute_unit_message(unit_id: int, token: int) -> None:
    """Handle one wake-up message: claim, run, complete, and keep going while eager."""
    worker = worker_name()
    claimed = claim_unit(unit_id, token, worker=worker)
    if claimed is None:
        log.debug(
            "message for unit %s token %s: nothing to claim (duplicate or stale)", unit_id, token
        )
        return
    while claimed is not None:
        claimed = complete(claimed, run_claimed(claimed), worker=worker)
