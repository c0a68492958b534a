"""The database shell around the engine core: load a run, advance it, store the result.

Every transition is one transaction holding the run's row lock: the changed units, the
run's status and the audit events are written together, and the messages for newly
queued units are sent only after COMMIT. Unit rows are updated on the condition that
they still hold what was loaded, so a concurrent claim can never be overwritten.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.events import NewEvent, record_events
from core.approvals.records import record_approvals
from core.attempt_results import AttemptResult
from core.dispatch import Message, get_dispatcher
from core.engine.advance import advance_all
from core.engine.events import Decision, Event, Fact, Nudge, RetryDue
from core.engine.plan import RunPlan, build_plan
from core.engine.state import (
    MAIN,
    NO_ITEM,
    TERMINAL_RUN,
    TERMINAL_UNIT,
    Deferred,
    RunState,
    RunStatus,
    Unit,
    UnitKey,
    UnitStatus,
)
from core.fast_sql import (
    UnitUpdate,
    decode_json,
    has_recorded_results,
    insert_units,
    lock_run,
    select_units,
    update_units,
)
from core.models import Run, StepRun
from integrations.registry import destructive, load_actions, unsafe_to_repeat

log = logging.getLogger(__name__)

# `inputs` is not loaded: the engine only ever writes it (when it queues a unit).
UNIT_FIELDS = (
    "id", "step_id", "item_index", "phase", "status", "attempts", "max_attempts", "attempt_group",
    "dispatch_token", "output", "error", "reason", "item_value", "items_total",
    "finished_order", "next_attempt_at", "result", "progress", "requests_made",
)  # fmt: skip


class ConcurrentChange(Exception):
    """A unit row changed between loading and writing; the transition is retried."""


class RunBusy(Exception):
    """Another transaction holds the run's lock (only raised when asked not to wait)."""


@dataclass(frozen=True)
class LoadedUnit:
    id: int
    status: str
    attempts: int
    dispatch_token: int
    result: dict[str, Any] | None = None


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


_plans: dict[tuple[int, str], RunPlan] = {}


def cached_plan(version_id: int, content_hash: str) -> RunPlan | None:
    """The plan of a version, if this process has built it already."""
    return _plans.get((version_id, content_hash))


def plan_for(run: Run, content_hash: str | None = None) -> RunPlan:
    """The engine plan of the run's pinned version, cached by the version's id and content
    hash (a version's definition never changes once published; see playbooks.models)."""
    if content_hash is None:
        content_hash = run.version.content_hash
    plan = _plans.get((run.version_id, content_hash))
    if plan is None:
        actions = load_actions()
        plan = build_plan(run.version.definition, unsafe_to_repeat=unsafe_to_repeat(actions),
                          destructive=destructive(actions))  # fmt: skip
        _plans[(run.version_id, content_hash)] = plan
    return plan


def _unit_from_row(row: dict[str, Any]) -> Unit:
    return Unit(
        key=UnitKey(row["step_id"], row["item_index"], row["phase"]),
        status=UnitStatus(row["status"]),
        attempts=row["attempts"],
        attempt_group=row["attempt_group"],
        max_attempts=row["max_attempts"],
        output=Deferred(row["output"], decode_json),
        error=row["error"],
        reason=row["reason"],
        next_attempt_at=_epoch(row["next_attempt_at"]),
        finished_order=row["finished_order"],
        items_total=row["items_total"],
        item_value=row["item_value"],
        progress=row["progress"],
        requests_made=row["requests_made"],
    )


def load_state(run: Run) -> tuple[RunState, dict[UnitKey, LoadedUnit]]:
    """The run's state for the engine, and what each row held when loaded."""
    units: dict[UnitKey, Unit] = {}
    loaded: dict[UnitKey, LoadedUnit] = {}
    rows = select_units(
        run.pk,
        UNIT_FIELDS,
        ("output", "error", "item_value", "result", "progress"),
        ("next_attempt_at",),
    )
    for row in rows:
        unit = _unit_from_row(row)
        units[unit.key] = unit
        loaded[unit.key] = LoadedUnit(
            row["id"], row["status"], row["attempts"], row["dispatch_token"], row["result"]
        )
    state = RunState(
        run_id=run.pk,
        status=RunStatus(run.status),
        inputs=run.inputs,
        units=units,
        context=run.context,
    )
    return state, loaded


_UNIT_DATA_FIELDS = (
    "status", "attempts", "attempt_group", "max_attempts", "inputs", "output", "error", "reason",
    "finished_order", "items_total", "item_value", "progress", "requests_made",
)  # fmt: skip


def _row_fields(before: Unit | None, after: Unit, now: datetime) -> dict[str, Any]:
    fields = {
        name: getattr(after, name)
        for name in _UNIT_DATA_FIELDS
        if before is None or getattr(before, name) != getattr(after, name)
    }
    if before is None or before.next_attempt_at != after.next_attempt_at:
        fields["next_attempt_at"] = _ts(after.next_attempt_at)
    if "status" in fields:
        fields["status"] = after.status.value
        if after.status == UnitStatus.QUEUED:
            fields["queued_at"] = now
        if after.status in TERMINAL_UNIT or after.status == UnitStatus.NEEDS_ATTENTION:
            fields["finished_at"] = now
        if after.status != UnitStatus.RUNNING:
            fields["lease_expires_at"] = None
            fields["lease_owner"] = ""
    return fields


def _audit_events(run: Run, facts: tuple[Fact, ...], actor: str) -> list[NewEvent]:
    events = []
    for fact in facts:
        payload: dict[str, Any] = dict(fact.payload)
        if fact.key is not None:
            payload.setdefault("unit", str(fact.key))
            if fact.key.item >= 0:
                payload.setdefault("item", fact.key.item)
        events.append(
            NewEvent(
                stream=f"run:{run.pk}",
                kind=fact.kind,
                actor=actor,
                payload=payload,
                run_id=run.pk,
                step_id=fact.key.step if fact.key else None,
                playbook=run.playbook.name if fact.kind.startswith("run.") else None,
            )
        )
    return events


def persist(
    run: Run,
    decision: Decision,
    before: RunState,
    loaded: dict[UnitKey, LoadedUnit],
    actor: str,
    clear_results: frozenset[UnitKey] = frozenset(),
) -> tuple[dict[UnitKey, Message], list[NewEvent]]:
    """Write the decision's rows; returns the message of each unit it queued and the
    audit events to record (the caller records them in one batch)."""
    now = timezone.now()
    messages: dict[UnitKey, Message] = {}
    updates: list[UnitUpdate] = []
    for key in sorted(decision.changed):
        after = decision.state.units[key]
        row = loaded[key]
        fields = _row_fields(before.units[key], after, now)
        if key in clear_results:
            fields["result"] = None
        if after.status == UnitStatus.QUEUED and fields.get("status"):
            fields["dispatch_token"] = row.dispatch_token + 1
            messages[key] = (row.id, row.dispatch_token + 1)
        updates.append(UnitUpdate(row.id, row.status, row.attempts, row.result is not None, fields))
    if update_units(updates) != len(updates):
        # Rolled back with the whole transition, which apply_event then retries.
        raise ConcurrentChange(f"a unit of run {run.pk} changed concurrently")
    if decision.created:
        rows = []
        for key in sorted(decision.created):
            unit = decision.state.units[key]
            fields = _row_fields(None, unit, now)
            if unit.status == UnitStatus.QUEUED:
                fields["dispatch_token"] = 1
            rows.append({"step_id": key.step, "item_index": key.item, "phase": key.phase, **fields})
        ids = insert_units(run.pk, rows)
        for key in sorted(decision.created):
            if decision.state.units[key].status == UnitStatus.QUEUED:
                messages[key] = (ids[(key.step, key.item, key.phase)], 1)
    if decision.run_status_changed:
        run.status = decision.state.status.value
        run.finished_at = now if decision.state.status in TERMINAL_RUN else None
        run.save(update_fields=["status", "finished_at", "updated_at"])
        if run.parent_id is not None and decision.state.status in TERMINAL_RUN:
            # A child ended: its parent's step looks now, not at its next poll.
            parent, label = run.parent_id, run.parent_unit
            transaction.on_commit(lambda: wake_parent(parent, label), robust=True)
    return messages, _audit_events(run, decision.facts, actor)


def wake_parent(parent_id: int, unit_label: str) -> None:
    """Have the parent's `playbook:` step poll its child now (if it is waiting on it)."""
    step, _, rest = unit_label.partition("[")
    key = UnitKey(step, int(rest.rstrip("]")) if rest else NO_ITEM)
    waiting = StepRun.objects.filter(run_id=parent_id, step_id=key.step, item_index=key.item,
                                     phase=MAIN, status=UnitStatus.WAITING).exists()  # fmt: skip
    if waiting:
        apply_event(parent_id, RetryDue(key), actor="system")


def drain_wakeups(queued: int) -> int:
    """How many drain wake-ups a transition that queued `queued` units sends: enough for
    every worker thread to join in (BULWARK_DRAIN_WAKEUPS), one per unit at most."""
    return min(queued, max(settings.BULWARK_DRAIN_WAKEUPS, -(-queued // 8)))


def dispatch_on_commit(run_id: int, messages: list[Message]) -> None:
    """After COMMIT, wake workers for the units this transaction queued: a message each,
    or, for a wide fan-out, drain wake-ups for the run (core.drain)."""
    if not messages:
        return
    if len(messages) >= settings.BULWARK_DRAIN_THRESHOLD:
        count = drain_wakeups(len(messages))
        transaction.on_commit(lambda: get_dispatcher().send_drain(run_id, count))
    else:
        transaction.on_commit(lambda: get_dispatcher().send(messages))


Precondition = Callable[[RunState, dict[UnitKey, LoadedUnit]], bool]
# Runs inside the transaction after the rows are written: may claim queued units for
# the caller (eager dispatch); returns the messages still to send and more audit events.
Hook = Callable[
    [Run, RunPlan, Decision, dict[UnitKey, Message]], tuple[list[Message], list[NewEvent]]
]


def apply_event(
    run_id: int,
    event: Event,
    *,
    actor: str,
    precondition: Precondition | None = None,
    before_commit: Hook | None = None,
    extra_events: list[NewEvent] | None = None,
    own_results: dict[UnitKey, AttemptResult] | None = None,
    wait_for_lock: bool = True,
    recheck: bool = True,
    retries: int = 5,
) -> Decision | None:
    """Advance run `run_id` by `event` in one transaction; None when the precondition fails.

    Attempt results recorded on unit rows are applied first (see core.attempt_results), as
    are `own_results`, which the caller holds in hand. `extra_events` are recorded before
    the engine's facts; `before_commit` may take queued units for the caller. With
    `wait_for_lock=False`, raises RunBusy instead of waiting for another transaction.

    After COMMIT the run is checked for results recorded meanwhile by workers that found
    it locked (they do not wait): whoever holds the lock last applies what is left, so no
    recorded result is ever stranded while the run is busy.
    """
    for attempt in range(retries):
        try:
            with transaction.atomic():
                locked = lock_run(run_id, wait=wait_for_lock)
                if locked is None:
                    if not wait_for_lock:  # runs are never deleted (PROTECT): it is locked
                        raise RunBusy(run_id)
                    raise Run.DoesNotExist(f"run {run_id} does not exist")
                run, content_hash = locked

                def look_again() -> None:
                    if recheck:
                        transaction.on_commit(
                            lambda: apply_recorded_results(run_id, actor=actor), robust=True
                        )

                if (
                    isinstance(event, Nudge)
                    and not own_results
                    and not has_recorded_results(run_id)
                ):
                    look_again()
                    return None  # another worker already applied everything recorded
                state, loaded = load_state(run)
                if precondition is not None and not precondition(state, loaded):
                    look_again()
                    return None
                plan = plan_for(run, content_hash)
                results = {
                    key: AttemptResult.from_json(row.result)
                    for key, row in sorted(loaded.items(), key=lambda kv: kv[1].id)
                    if row.result is not None and row.status == UnitStatus.RUNNING
                }
                recorded = frozenset(results)
                results.update(own_results or {})
                events = [result.event(key) for key, result in results.items()]
                decision = advance_all(plan, state, [*events, event], timezone.now().timestamp())
                messages, facts = persist(run, decision, state, loaded, actor, recorded)
                if any(f.kind.startswith("approval.") for f in decision.facts):
                    unit_ids = {key: row.id for key, row in loaded.items()}
                    # A dry run's requests are decided in Bulwark only: announcing them
                    # in chat or e-mail would be a write.
                    announce = record_approvals(run_id, plan, decision, unit_ids,
                                                announce_them=not run.dry_run)  # fmt: skip
                    if announce:
                        transaction.on_commit(
                            functools.partial(get_dispatcher().announce, announce), robust=True
                        )
                to_send: list[Message] = list(messages.values())
                later: list[NewEvent] = []
                if before_commit is not None:
                    to_send, later = before_commit(run, plan, decision, messages)
                attempts = [
                    e for key, result in results.items() for e in result.audit_events(run.pk, key)
                ]
                all_events = [*(extra_events or []), *attempts, *facts, *later]
                if all_events:
                    record_events(all_events)
                dispatch_on_commit(run_id, to_send)
                # Only a worker holding (or able to claim) one of this run's units can have
                # recorded a result while this transaction held the lock; the units this
                # transaction queued cannot have been claimed before its COMMIT.
                queued_here = {command.key for command in decision.commands}
                if any(
                    u.status in (UnitStatus.RUNNING, UnitStatus.QUEUED) and key not in queued_here
                    for key, u in decision.state.units.items()
                ):
                    look_again()
                return decision
        except ConcurrentChange:
            log.info("run %s: concurrent change, retrying transition (%d)", run_id, attempt + 1)
    raise ConcurrentChange(f"run {run_id}: gave up after {retries} concurrent changes")


def apply_recorded_results(run_id: int, *, actor: str, rounds: int = 20) -> None:
    """Apply results recorded while the run was locked, unless someone else holds it now
    (then they will, after their own COMMIT)."""
    for _ in range(rounds):
        if not has_recorded_results(run_id):
            return
        try:
            apply_event(run_id, Nudge(), actor=actor, wait_for_lock=False, recheck=False)
        except RunBusy:
            return
