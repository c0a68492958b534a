"""Running one unit: claim it, call its action, record the outcome (fenced), go on.

A claim is one conditional UPDATE: the unit must still be queued under the message's
dispatch token, so a duplicate or stale message changes nothing. The attempt is counted
at the claim. The completion write must match the claimed attempt number (the fencing
token): a "zombie" whose lease was taken over changes nothing, and that is audited.
Completing a unit may queue the next ones; the finishing worker claims one of them in the
same transaction and runs it at once (eager dispatch), the broker carries the rest.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from artifacts.store import describe, save_artifact
from audit.events import NewEvent, record_event
from core.approvals.budgets import take_budget
from core.approvals.reauthorize import approvals_in_force
from core.attempt_results import AttemptResult
from core.dispatch import Message
from core.dry_run import dry_outcome
from core.engine.events import Decision, Nudge
from core.engine.plan import RunPlan
from core.engine.state import ErrorInfo, RunState, Unit, UnitKey, UnitStatus
from core.fast_sql import insert_finished_attempt, record_finished_attempt, run_version, take_unit
from core.lease import lease_keeper
from core.models import Attempt, Run, idempotency_key
from core.transitions import Hook, LoadedUnit, RunBusy, apply_event, cached_plan, plan_for
from integrations.connections import resolve_connection
from integrations.context import ActionContext, ConnectionInfo, PollAgain
from integrations.errors import ActionError
from integrations.http_client import credential_secrets, redact
from integrations.registry import get_action, invoke

log = logging.getLogger(__name__)


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
    idempotency_key: str
    action: str
    connection: str | None
    timeout: float
    inputs: dict[str, Any]
    started_at: datetime
    worker: str
    # What the action kept when it last asked to be polled again.
    progress: Any = None
    # Claimed eagerly while no other unit of its run was queued or running: its result
    # will most likely find the run's lock free (a sequential chain).
    solo: bool = False
    # Claimed by a drain wake-up (core.drain): its completion claims the run's next unit.
    drained: bool = False


@dataclass(frozen=True)
class Outcome:
    output: Any = None
    error: ErrorInfo | None = None
    # The action asked to be called again later: {"after", "progress", "note"}.
    waiting: dict[str, Any] | None = None
    # It did not act: its blast-radius budget is spent (see core.approvals.budgets).
    held: dict[str, Any] | None = None

    @property
    def settled(self) -> bool:
        """Succeeded: nothing about it needs applying before the next unit starts."""
        return self.error is None and self.waiting is None and self.held is None


def claimed_unit(row: dict[str, Any]) -> Unit:
    """The unit as a claim statement returned it (attempts already counted)."""
    return Unit(
        key=UnitKey(row["step_id"], row["item_index"], row["phase"]),
        attempts=row["attempts"],
        attempt_group=row["attempt_group"],
        max_attempts=row["max_attempts"],
        inputs=row["inputs"],
        progress=row.get("progress"),
    )


def _take(unit_id: int, token: int, worker: str) -> tuple[int, Unit] | None:
    """The claim itself: one conditional UPDATE; the attempt is counted here. Returns the
    run id and the unit as claimed (attempts counted), or None when it was not claimable."""
    row = take_unit(unit_id, token, worker=worker, lease_seconds=settings.BULWARK_LEASE_SECONDS)
    if row is None:
        return None
    return row["run_id"], claimed_unit(row)


def start_attempt(
    *,
    run_id: int,
    unit_id: int,
    unit: Unit,
    attempt: int,
    plan: RunPlan,
    worker: str,
    solo: bool = False,
    drained: bool = False,
) -> Claimed:
    """The claimed attempt, as the worker will run it. Its Attempt row and audit event are
    written when it ends (or when the scheduler finds it lost), so a claim is one UPDATE
    and never queues on the run's audit chain."""
    step = plan.step(unit.key.step)
    compensation = step.compensate if unit.key.phase != "main" else None
    action = compensation.action if compensation else step.action or ""
    key = idempotency_key(run_id, str(unit.key), unit.attempt_group)
    return Claimed(
        unit_id=unit_id,
        run_id=run_id,
        key=unit.key,
        attempt=attempt,
        attempt_group=unit.attempt_group,
        idempotency_key=key,
        action=action,
        connection=step.connection,
        timeout=step.timeout,
        inputs=unit.inputs or {},
        started_at=timezone.now(),
        worker=worker,
        progress=unit.progress,
        solo=solo,
        drained=drained,
    )


@functools.lru_cache(maxsize=10_000)
def pinned_version(run_id: int) -> tuple[int, str, bool]:
    """A run's version id and content hash, and whether it is dry; cached, since a run
    never changes them."""
    return run_version(run_id)


def pinned_plan(run_id: int) -> RunPlan:
    """The engine plan of the run's pinned version (cached: versions never change)."""
    version_id, content_hash, _ = pinned_version(run_id)
    plan = cached_plan(version_id, content_hash)  # without building a Run, which costs
    return plan or plan_for(Run(pk=run_id, version_id=version_id), content_hash)


def claim_unit(unit_id: int, token: int, *, worker: str) -> Claimed | None:
    """Claim a queued unit from a message; None if not claimable. The claim is a single
    statement, so it needs no transaction of its own (two round trips fewer)."""
    taken = _take(unit_id, token, worker)
    if taken is None:
        return None
    run_id, unit = taken
    return start_attempt(
        run_id=run_id, unit_id=unit_id, unit=unit, attempt=unit.attempts,
        plan=pinned_plan(run_id), worker=worker,
    )  # fmt: skip


def _connection_for(
    claimed: Claimed, integration: str | None, required: bool
) -> ConnectionInfo | None:
    if integration is None or (claimed.connection is None and not required):
        return None
    return resolve_connection(integration=integration, name=claimed.connection)


def _json_safe(value: Any) -> Any:
    """The output as stored JSON: NUL characters (which PostgreSQL's jsonb cannot hold)
    replaced; raises TypeError for values JSON cannot represent."""
    text = json.dumps(value, allow_nan=False).replace("\\u0000", "\\ufffd")
    return json.loads(text)


def run_claimed(claimed: Claimed) -> Outcome:
    """Call the unit's action with its context; classify whatever happens."""
    spec = get_action(claimed.action)
    if spec is None:
        return Outcome(error=ErrorInfo(f"unknown action {claimed.action!r}", kind="unknown_action"))
    try:
        connection = _connection_for(claimed, spec.connection_integration, spec.connection_required)
    except Exception as exc:  # unknown, ambiguous or undecryptable: the step fails, clearly
        return Outcome(error=ErrorInfo(f"connection: {exc}", kind="connection"))
    secrets = credential_secrets(connection.credentials) if connection else []
    if pinned_version(claimed.run_id)[2]:
        try:
            dry = dry_outcome(spec, claimed, connection)
        except ActionError as exc:  # inputs it would refuse: as the real call fails
            return Outcome(error=ErrorInfo(redact(exc.message, secrets), exc.kind))
        if dry is not None:  # a write planned, or a read answered by its fixture
            return _dry_output(claimed, _json_safe(redact(dry, secrets)))
    if spec.side_effect == "destructive" and claimed.progress is None:
        # Before it first acts (a poll of an action in flight has acted already): its
        # approvals must still hold (a compensation acts on none), then its budget must
        # allow it.
        hold = None
        if claimed.key.phase == "main":
            hold = approvals_in_force(run_id=claimed.run_id, step_id=claimed.key.step,
                                      unit_label=str(claimed.key), inputs=claimed.inputs)  # fmt: skip
        if hold is None:
            hold = take_budget(action=claimed.action, unit_id=claimed.unit_id,
                               attempt_group=claimed.attempt_group, inputs=claimed.inputs)  # fmt: skip
        if hold is not None:
            return Outcome(held=redact(hold, secrets))
    ctx = ActionContext(
        run_id=claimed.run_id,
        step_id=claimed.key.step,
        item_index=None if claimed.key.item < 0 else claimed.key.item,
        attempt=claimed.attempt,
        idempotency_key=claimed.idempotency_key,
        timeout_seconds=claimed.timeout,
        connection=connection,
        progress=claimed.progress,
    )
    # The lease is held from here until the result is written (see execute_unit_message).
    lease_keeper().hold(claimed.unit_id, claimed.attempt, ctx)
    try:
        output = _json_safe(redact(invoke(spec, ctx, claimed.inputs), secrets))
    except PollAgain as wait:
        try:
            progress = _json_safe(redact(wait.progress, secrets))
        except (TypeError, ValueError) as exc:
            message = f"the progress kept between polls is not JSON: {exc}"
            return Outcome(error=ErrorInfo(message, kind="output_not_json"))
        note = redact(wait.note, secrets)
        return Outcome(waiting={"after": float(wait.after), "progress": progress, "note": note})
    except ActionError as exc:
        return Outcome(
            error=ErrorInfo(
                redact(exc.message, secrets), exc.kind, exc.retryable, exc.retry_after,
                request_sent=bool(exc.details.get("request_sent")),
            )
        )  # fmt: skip
    except (TypeError, ValueError) as exc:
        message = redact(f"the output is not JSON: {exc}", secrets)
        return Outcome(error=ErrorInfo(message, kind="output_not_json"))
    except Exception as exc:
        message = redact(f"{type(exc).__name__}: {exc}", secrets)
        # The traceback's own text may quote secrets, so it is redacted too.
        log.error("action %s crashed in unit %s: %s\n%s", claimed.action, claimed.unit_id, message,
                  redact(traceback.format_exc(), secrets))  # fmt: skip
        return Outcome(error=ErrorInfo(message, kind="internal_error"))
    encoded = json.dumps(output)
    if len(encoded) > settings.BULWARK_MAX_OUTPUT_BYTES:
        try:
            output = _output_as_artifact(claimed, encoded)
        except Exception as exc:  # a full disk or an unreachable bucket: a retryable failure
            log.error("unit %s: keeping its large output failed: %s", claimed.unit_id, exc)
            return Outcome(error=ErrorInfo(f"the output ({len(encoded)} bytes) could not be kept as an "
                                           f"artifact: {type(exc).__name__}", kind="artifact_storage",
                                           retryable=True))  # fmt: skip
    return Outcome(output=output)


def _dry_output(claimed: Claimed, output: Any) -> Outcome:
    """A dry run's planned or fixture output, held to the same size limit as any other."""
    encoded = json.dumps(output)
    if len(encoded) > settings.BULWARK_MAX_OUTPUT_BYTES:
        return Outcome(output=_output_as_artifact(claimed, encoded))
    return Outcome(output=output)


def _output_as_artifact(claimed: Claimed, encoded: str) -> dict[str, Any]:
    """An output too large for the unit's row, kept as a JSON artifact; the step's output
    refers to it (SPEC §4), so templates see `output.artifact.sha256` and its size."""
    data = encoded.encode()
    artifact = save_artifact(
        chunks=[data], filename=f"{claimed.key}-output.json".replace(":", "-"),
        content_type="application/json", source=f"output of {claimed.action} (step {claimed.key})",
        actor=claimed.worker, run_id=claimed.run_id, step_id=claimed.key.step,
        item_index=claimed.key.item, metadata={"attempt": claimed.attempt},
    )  # fmt: skip
    return {"artifact": describe(artifact), "output_too_large": True, "size": len(data)}


def attempt_result(claimed: Claimed, outcome: Outcome, finished: datetime) -> AttemptResult:
    return AttemptResult(
        attempt=claimed.attempt,
        worker=claimed.worker,
        started_at=claimed.started_at.isoformat(),
        idempotency_key=claimed.idempotency_key,
        action=claimed.action,
        duration_ms=(finished - claimed.started_at).total_seconds() * 1000,
        output=outcome.output if outcome.settled else None,
        error=outcome.error.as_dict() if outcome.error else None,
        waiting=outcome.waiting,
        held=outcome.held,
    )


def attempt_row(claimed: Claimed, result: AttemptResult, finished: datetime) -> dict[str, Any]:
    return {
        "attempt_group": claimed.attempt_group,
        "worker": claimed.worker,
        "idempotency_key": claimed.idempotency_key,
        "started_at": claimed.started_at,
        "outcome": Attempt.Outcome(result.outcome),
        "finished_at": finished,
        "duration_ms": result.duration_ms,
        "error": result.error,
    }


def eager_take(worker: str, into: list[Claimed], *, enabled: bool = True) -> Hook:
    """A before-commit hook that claims the first unit the transition queued for this
    worker (eager dispatch) and leaves the rest to the dispatcher; one claim at most."""

    def take_next(
        run: Run, plan: RunPlan, decision: Decision, messages: dict[UnitKey, Message]
    ) -> tuple[list[Message], list[NewEvent]]:
        remaining = list(messages.items())
        if not enabled or not remaining or into:
            return [m for _, m in remaining], []
        (_, (unit_id, token)), rest = remaining[0], remaining[1:]
        taken = _take(unit_id, token, worker)
        if taken is None:
            return [m for _, m in remaining], []
        unit = taken[1]
        active = sum(
            1 for u in decision.state.units.values()
            if u.status in (UnitStatus.QUEUED, UnitStatus.RUNNING)
        )  # fmt: skip
        into.append(
            start_attempt(run_id=run.pk, unit_id=unit_id, unit=unit, attempt=unit.attempts,
                           plan=plan, worker=worker, solo=active == 1)
        )  # fmt: skip
        return [m for _, m in rest], []

    return take_next


def complete(
    claimed: Claimed, outcome: Outcome, *, worker: str, eager: bool = True
) -> Claimed | None:
    """Record the attempt's outcome (fenced by the attempt number) and advance the run.

    A unit that ran alone (a sequential chain) most likely finds the run's lock free: one
    transaction records its result, advances the run and claims the next ready unit for
    this worker. Otherwise (siblings of a fan-out finishing together) the result is first
    written on the unit row, which needs no lock, and then applied by whichever
    transaction gets the lock next: this worker's, if the run is free, or the current
    holder's, after its COMMIT.
    """
    finished = timezone.now()
    result = attempt_result(claimed, outcome, finished)
    row = attempt_row(claimed, result, finished)
    next_claim: list[Claimed] = []

    def still_ours(state: RunState, loaded: dict[UnitKey, LoadedUnit]) -> bool:
        unit = loaded.get(claimed.key)
        return (
            unit is not None
            and unit.status == UnitStatus.RUNNING
            and unit.attempts == claimed.attempt
            and unit.result is None
        )

    take_next = eager_take(worker, next_claim, enabled=eager)

    def finish_and_take_next(
        run: Run, plan: RunPlan, decision: Decision, messages: dict[UnitKey, Message]
    ) -> tuple[list[Message], list[NewEvent]]:
        insert_finished_attempt(unit_id=claimed.unit_id, number=claimed.attempt, **row)
        return take_next(run, plan, decision, messages)

    if claimed.solo:
        try:
            decision = apply_event(
                claimed.run_id, Nudge(), actor=worker, precondition=still_ours,
                before_commit=finish_and_take_next, own_results={claimed.key: result},
                wait_for_lock=False,
            )  # fmt: skip
        except RunBusy:
            pass  # someone else holds the run after all: leave the result for them
        else:
            if decision is None:
                reject_zombie(claimed, outcome, worker)
                return None
            return next_claim[0] if next_claim else None
    recorded = record_finished_attempt(
        unit_id=claimed.unit_id, attempt=claimed.attempt, result=result.as_json(), **row
    )
    if not recorded:
        reject_zombie(claimed, outcome, worker)
        return None
    try:  # apply it now if the run is free; otherwise its holder will, after COMMIT
        apply_event(claimed.run_id, Nudge(), actor=worker, before_commit=take_next,
                    wait_for_lock=False)  # fmt: skip
    except RunBusy:
        return None
    return next_claim[0] if next_claim else None


def reject_zombie(claimed: Claimed, outcome: Outcome, worker: str) -> None:
    log.warning(
        "unit %s attempt %s finished after losing its lease; result not recorded",
        claimed.unit_id,
        claimed.attempt,
    )
    with transaction.atomic():
        # The scheduler may have recorded this attempt as lost already.
        ended = {
            "outcome": Attempt.Outcome.FENCED,
            "finished_at": timezone.now(),
            "error": outcome.error.as_dict() if outcome.error else None,
        }
        Attempt.objects.update_or_create(
            unit_id=claimed.unit_id,
            number=claimed.attempt,
            defaults=ended,
            create_defaults={**ended, "attempt_group": claimed.attempt_group, "worker": worker,
                             "idempotency_key": claimed.idempotency_key,
                             "started_at": claimed.started_at},
        )  # fmt: skip
        record_event(
            stream=f"run:{claimed.run_id}",
            kind="attempt.fenced_write_rejected",
            actor=worker,
            run_id=claimed.run_id,
            step_id=claimed.key.step,
            payload={
                "unit": str(claimed.key),
                "attempt": claimed.attempt,
                "would_have_recorded": "held"
                if outcome.held
                else "waiting"
                if outcome.waiting
                else "failed"
                if outcome.error
                else "succeeded",
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
    keeper = lease_keeper()
    while claimed is not None:
        current = claimed
        try:
            claimed = complete(current, run_claimed(current), worker=worker)
        finally:
            # Renewed until the result is on record, so the scheduler cannot hand the unit
            # to another worker while this one is still writing it.
            keeper.release(current.unit_id, current.attempt)
