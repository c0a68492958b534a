"""The engine's pure core: `advance(plan, state, event, now)` → a Decision.

No I/O and no clock of its own: the shell loads the state, calls this, and stores what
changed together with the facts, then dispatches the commands. After applying the event
the core re-derives everything that follows from the new state (see progress.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.engine.builder import Builder, EngineError, fail, finish_success, renewed
from core.engine.events import (
    Cancel,
    Decision,
    Event,
    Execute,
    Nudge,
    Resume,
    RetryDue,
    RetryStep,
    Start,
    UnitFailed,
    UnitHeld,
    UnitLost,
    UnitSucceeded,
    UnitWaiting,
    Vote,
)
from core.engine.gates import hold_unit, on_due, on_vote
from core.engine.plan import RetryPolicy, RunPlan, StepPlan
from core.engine.progress import STOPPING_REASON, progress
from core.engine.retry import backoff_delay
from core.engine.state import (
    COMPENSATE,
    TERMINAL_RUN,
    TIMED_UNIT,
    RunState,
    RunStatus,
    Unit,
    UnitKey,
    UnitStatus,
)


def _policy(b: Builder, key: UnitKey) -> RetryPolicy:
    return b.plan.step(key.step).retry if key.phase != COMPENSATE else RetryPolicy()


def _on_failed(b: Builder, event: UnitFailed) -> None:
    unit = b.unit(event.key)
    _require(unit, UnitStatus.RUNNING, event)
    error = event.error.as_dict() | {"attempt": unit.attempts}
    action = _action_of(b, event.key)
    if event.error.request_sent and action is not None and not _resumable(b, unit, action):
        ambiguous = error | {
            "kind": "ambiguous",
            "message": f"{action} sent its request and its outcome is unknown ({event.error.message}); "
            "it cannot be safely repeated, so the step waits for a person",
        }
        b.update(event.key, status=UnitStatus.NEEDS_ATTENTION, error=ambiguous)
        b.fact("step.needs_attention", event.key, error=ambiguous)
        return
    policy = _policy(b, event.key)
    if event.error.retryable and unit.attempts < unit.max_attempts:
        # The attempt's place in its group: an operator retry starts the backoff afresh.
        in_group = unit.attempts - (unit.max_attempts - policy.attempts)
        delay = backoff_delay(
            policy,
            attempt=max(1, in_group),
            retry_after=event.error.retry_after,
            seed=f"{b.original.run_id}:{event.key}:{unit.attempt_group}",
        )
        b.update(
            event.key, status=UnitStatus.RETRY_WAIT, error=error, next_attempt_at=b.now + delay
        )
        b.fact(
            "step.retry_scheduled",
            event.key,
            error=error,
            delay_seconds=round(delay, 3),
            attempt=unit.attempts,
            max_attempts=unit.max_attempts,
        )
        return
    fail(b, event.key, error)


# Bounds a poll interval an action asks for (the action's own deadline ends the wait).
MAX_WAIT_SECONDS = 3600.0


def _on_waiting(b: Builder, event: UnitWaiting) -> None:
    """Park the unit until its next poll. The claim that polled does not use up one of
    the step's attempts (its budget grows by one), so a long wait never exhausts retries;
    `attempts` still grows, as the fencing token must."""
    unit = b.unit(event.key)
    _require(unit, UnitStatus.RUNNING, event)
    delay = min(max(0.0, float(event.after)), MAX_WAIT_SECONDS)
    b.update(
        event.key,
        status=UnitStatus.WAITING,
        next_attempt_at=b.now + delay,
        progress=event.progress,
        max_attempts=unit.max_attempts + 1,
        error=None,
    )
    b.fact(
        "step.waiting",
        event.key,
        attempt=unit.attempts,
        poll_after_seconds=round(delay, 3),
        **({"note": event.note} if event.note else {}),
    )


def _resumable(b: Builder, unit: Unit, action: str) -> bool:
    """Whether another attempt may run after this one's effect became unknown: the action
    is safe to repeat, or it kept progress (its vendor-side handle, see PollAgain), so the
    next attempt resumes from there instead of acting again."""
    return b.plan.safe_to_repeat(action) or unit.progress is not None


def _action_of(b: Builder, key: UnitKey) -> str | None:
    step = b.plan.step(key.step)
    if key.phase == COMPENSATE:
        return step.compensate.action if step.compensate else None
    return step.action


def _on_lost(b: Builder, event: UnitLost) -> None:
    unit = b.unit(event.key)
    _require(unit, UnitStatus.RUNNING, event)
    if event.key == UnitKey(event.key.step) and b.plan.step(event.key.step).is_fan_out:
        # A running for_each step is waiting for its items; it has no attempt to lose.
        raise EngineError(f"UnitLost for {event.key}, a for_each step, which runs no action")
    action = _action_of(b, event.key)
    if unit.attempts >= unit.max_attempts:
        error = {
            "kind": "worker_lost",
            "message": f"attempt {unit.attempts} of {unit.max_attempts} lost its worker; "
            "no attempts are left, so the step waits for a person",
        }
    elif action is not None and not _resumable(b, unit, action):
        error = {
            "kind": "ambiguous",
            "message": f"attempt {unit.attempts} lost its worker while running {action}, which "
            "cannot be safely repeated; its effect is unknown, so the step waits for a person",
        }
    else:
        b.update(event.key, status=UnitStatus.QUEUED)
        b.commands.append(Execute(event.key))
        b.fact("attempt.lost", event.key, attempt=unit.attempts, requeued=True)
        return
    b.update(event.key, status=UnitStatus.NEEDS_ATTENTION, error=error)
    b.fact("step.needs_attention", event.key, error=error)


def _on_retry_due(b: Builder, event: RetryDue) -> None:
    unit = b.unit(event.key)
    if unit.status not in TIMED_UNIT:
        return  # already handled by another scheduler tick
    if unit.status == UnitStatus.WAITING_APPROVAL:
        on_due(b, event.key)
        return
    b.update(event.key, status=UnitStatus.QUEUED, next_attempt_at=None)
    b.commands.append(Execute(event.key))
    kind = "step.polling" if unit.status == UnitStatus.WAITING else "step.retrying"
    b.fact(kind, event.key, attempt=unit.attempts + 1)


def _on_cancel(b: Builder, event: Cancel) -> None:
    if b.status in TERMINAL_RUN:
        raise EngineError(f"the run is already {b.status.value}")
    for key, unit in list(b.units.items()):
        if unit.status in {
            UnitStatus.PENDING,
            UnitStatus.QUEUED,
            UnitStatus.RETRY_WAIT,
            UnitStatus.WAITING,
            UnitStatus.WAITING_APPROVAL,
            UnitStatus.NEEDS_ATTENTION,
        }:
            if unit.status == UnitStatus.WAITING_APPROVAL:
                b.fact("approval.withdrawn", key, reason=event.reason)
            b.update(key, status=UnitStatus.CANCELLED, reason=event.reason, next_attempt_at=None)
    running = any(u.status == UnitStatus.RUNNING for u in b.units.values())
    b.set_run_status(RunStatus.CANCELLING if running else RunStatus.CANCELLED, reason=event.reason)


def _descendants(plan: RunPlan, step_id: str) -> list[StepPlan]:
    return [s for s in plan.steps if step_id in plan.ancestors[s.id]]


def _reset_step(b: Builder, step_id: str, *, resume_items: bool) -> None:
    """Make a step runnable again. The retried step itself keeps its succeeded items."""
    key = UnitKey(step_id)
    unit = b.unit(key)
    for item in b.state.items_of(step_id) if unit.items_total is not None else []:
        if item.status != UnitStatus.SUCCEEDED or not resume_items:
            if item.status == UnitStatus.WAITING_APPROVAL:  # its request asks no more
                b.fact("approval.withdrawn", item.key, reason="the step is run again")
            b.update(item.key, **renewed(b, item))
    if resume_items and unit.items_total is not None:
        b.update(key, status=UnitStatus.RUNNING, error=None, reason=None, finished_order=None)
        return
    b.update(key, output=None, **renewed(b, unit))


_FAILED_UNIT = frozenset({UnitStatus.FAILED, UnitStatus.NEEDS_ATTENTION})


def _check_can_retry(b: Builder, what: str) -> None:
    if b.status not in {RunStatus.FAILED, RunStatus.NEEDS_ATTENTION}:
        raise EngineError(
            f"only a failed run or one that needs attention can {what}; this run is {b.status.value}"
        )
    if b.state.compensations():
        raise EngineError(
            f"the run's compensation has run, so it cannot {what} (re-run it instead)"
        )


def _failed_steps(b: Builder) -> list[str]:
    return [s.id for s in b.plan.steps if b.unit(UnitKey(s.id)).status in _FAILED_UNIT]


def _on_retry_step(b: Builder, event: RetryStep) -> None:
    if event.step_id not in b.plan.by_id:
        raise EngineError(f"the run has no step {event.step_id!r}")
    _check_can_retry(b, "retry a step")
    unit = b.unit(UnitKey(event.step_id))
    if unit.status not in _FAILED_UNIT:
        raise EngineError(
            f"step {event.step_id} is {unit.status.value}; only a failed step can be retried"
        )
    retried = [event.step_id]
    if b.plan.on_failure != "continue":
        # The run stopped because of every failed step; resuming it retries them all, or
        # the others would stop it again at once.
        retried += [s for s in _failed_steps(b) if s != event.step_id]
    _run_again(b, retried)
    b.fact("step.retry_requested", UnitKey(event.step_id), also_retried=retried[1:])
    b.set_run_status(RunStatus.RUNNING)


def _on_resume(b: Builder) -> None:
    _check_can_retry(b, "resume")
    retried = _failed_steps(b)
    if not retried:
        raise EngineError("no step of the run failed or needs attention: nothing to resume")
    unknown = [s for s in retried if _outcome_unknown(b.unit(UnitKey(s)))]
    if unknown:
        # Its request went out and nobody knows what it did: repeating it is a person's
        # decision about that step, not part of resuming the run.
        raise EngineError(
            f"the outcome of step {unknown[0]} is unknown (its request was sent); check the "
            f"vendor, then retry that step by name"
        )
    _run_again(b, retried)
    kept = [s.id for s in b.plan.steps if b.unit(UnitKey(s.id)).status == UnitStatus.SUCCEEDED]
    b.fact("run.resumed", steps=retried, kept=kept)
    b.set_run_status(RunStatus.RUNNING)


def _outcome_unknown(unit: Unit) -> bool:
    units_error = unit.error if isinstance(unit.error, dict) else {}
    return unit.status == UnitStatus.NEEDS_ATTENTION and units_error.get("kind") == "ambiguous"


def _run_again(b: Builder, retried: list[str]) -> None:
    """Make the retried steps runnable (keeping a for_each step's succeeded items), and
    what they made skip or fail; the succeeded steps keep their outputs."""
    for step_id in retried:
        _reset_step(b, step_id, resume_items=True)
    for step_id in retried:
        for step in _descendants(b.plan, step_id):
            if step.id not in retried and b.unit(UnitKey(step.id)).status in {
                UnitStatus.SKIPPED,
                UnitStatus.FAILED,
                UnitStatus.NEEDS_ATTENTION,
            }:
                _reset_step(b, step.id, resume_items=False)
    for step in b.plan.steps:  # steps skipped only because the run was stopping
        if b.unit(UnitKey(step.id)).reason == STOPPING_REASON:
            _reset_step(b, step.id, resume_items=False)


def _require(unit: Unit, status: UnitStatus, event: Event) -> None:
    if unit.status != status:
        raise EngineError(
            f"{type(event).__name__} for {unit.key} which is {unit.status.value}, not {status.value}"
        )


def _apply(b: Builder, event: Event) -> None:
    match event:
        case Start():
            b.fact("run.started")
        case UnitSucceeded(key=key, output=output):
            _require(b.unit(key), UnitStatus.RUNNING, event)
            finish_success(b, key, output)
        case UnitFailed():
            _on_failed(b, event)
        case UnitWaiting():
            _on_waiting(b, event)
        case UnitLost():
            _on_lost(b, event)
        case RetryDue():
            _on_retry_due(b, event)
        case Cancel():
            _on_cancel(b, event)
        case RetryStep():
            _on_retry_step(b, event)
        case Resume():
            _on_resume(b)
        case UnitHeld():
            _require(b.unit(event.key), UnitStatus.RUNNING, event)
            hold_unit(b, event)
        case Vote():
            on_vote(b, event)
        case Nudge():
            pass


def advance(plan: RunPlan, state: RunState, event: Event, now: float) -> Decision:
    """Apply `event` to `state` at time `now` (seconds since the epoch)."""
    return advance_all(plan, state, [event], now)


def advance_all(plan: RunPlan, state: RunState, events: list[Event], now: float) -> Decision:
    """Apply several events in order, then derive what follows once (progress is
    level-triggered, so once after all of them equals once after each)."""
    b = Builder(plan, state, now)
    for event in events:
        _apply(b, event)
    progress(b)
    return Decision(
        state=b.state,
        changed=frozenset(b.changed),
        created=frozenset(b.created),
        # A unit queued by one event may have been cancelled by a later one.
        commands=tuple(
            dict.fromkeys(c for c in b.commands if b.units[c.key].status == UnitStatus.QUEUED)
        ),
        facts=tuple(b.facts),
        run_status_changed=b.status != state.status,
    )


def claim(state: RunState, key: UnitKey) -> RunState:
    """What a worker's claim does to a queued unit (the shell does it with one UPDATE)."""
    unit = state.units[key]
    if unit.status != UnitStatus.QUEUED:
        raise EngineError(f"cannot claim {key}: it is {unit.status.value}")
    units = dict(state.units)
    units[key] = replace(unit, status=UnitStatus.RUNNING, attempts=unit.attempts + 1)
    return replace(state, units=units)


def new_run_state(
    plan: RunPlan, *, run_id: int, inputs: dict[str, Any], context: dict[str, Any] | None = None
) -> RunState:
    """A run's state before Start: every step pending."""
    units = {
        UnitKey(s.id): Unit(key=UnitKey(s.id), max_attempts=s.retry.attempts) for s in plan.steps
    }
    return RunState(
        run_id=run_id, status=RunStatus.RUNNING, inputs=inputs, units=units, context=context or {}
    )


__all__ = ["EngineError", "advance", "advance_all", "claim", "new_run_state"]
