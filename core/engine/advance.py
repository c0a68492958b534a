"""The engine's pure core: `advance(plan, state, event, now)` → a Decision.

No I/O and no clock of its own: the shell loads the state, calls this, and stores what
changed together with the facts, then dispatches the commands. After applying the event
the core re-derives everything that follows from the new state ("level-triggered"), so
the same function also repairs a run whose progress was interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.engine.events import (
    Cancel,
    Decision,
    Event,
    Execute,
    Fact,
    RetryDue,
    RetryStep,
    Start,
    UnitFailed,
    UnitLost,
    UnitSucceeded,
)
from core.engine.plan import RetryPolicy, RunPlan, StepPlan
from core.engine.retry import backoff_delay
from core.engine.state import (
    ACTIVE_UNIT,
    COMPENSATE,
    TERMINAL_RUN,
    TERMINAL_UNIT,
    ErrorInfo,
    RunState,
    RunStatus,
    Unit,
    UnitKey,
    UnitStatus,
)
from playbooks.expressions import (
    ExpressionError,
    evaluate_condition,
    render_value,
    uses_status_function,
)

STOPPING_REASON = "the run is stopping after a failure"


class EngineError(Exception):
    """An event that does not fit the run's state (a caller's mistake, not a run failure)."""


class _Builder:
    """Copy-on-write edits of a RunState, remembering what changed."""

    def __init__(self, plan: RunPlan, state: RunState, now: float) -> None:
        self.plan = plan
        self.now = now
        self.status = state.status
        self.units = dict(state.units)
        self.original = state
        self.changed: set[UnitKey] = set()
        self.created: set[UnitKey] = set()
        self.commands: list[Execute] = []
        self.facts: list[Fact] = []

    @property
    def state(self) -> RunState:
        return replace(self.original, status=self.status, units=self.units)

    def unit(self, key: UnitKey) -> Unit:
        return self.units[key]

    def update(self, key: UnitKey, **fields: Any) -> Unit:
        unit = replace(self.units[key], **fields)
        self.units[key] = unit
        if key not in self.created:
            self.changed.add(key)
        return unit

    def create(self, unit: Unit) -> None:
        if unit.key in self.units:
            raise EngineError(f"unit {unit.key} exists already")
        self.units[unit.key] = unit
        self.created.add(unit.key)

    def fact(self, kind: str, key: UnitKey | None = None, **payload: Any) -> None:
        self.facts.append(Fact(kind=kind, key=key, payload=payload))

    def set_run_status(self, status: RunStatus, **payload: Any) -> None:
        if status != self.status:
            self.status = status
            self.fact(f"run.{status.value}", **payload)

    def next_order(self) -> int:
        return max((u.finished_order or 0 for u in self.units.values()), default=0) + 1

    # -- helpers over the plan ------------------------------------------------------
    def main_units(self) -> list[Unit]:
        return [u for k, u in self.units.items() if k.phase != COMPENSATE]

    def failure_seen(self) -> bool:
        return any(u.status == UnitStatus.FAILED for k, u in self.units.items() if k.is_step)

    def template_context(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        steps = {
            step.id: {
                "status": (u := self.units[UnitKey(step.id)]).status.value,
                "outcome": u.reason if u.status == UnitStatus.SKIPPED else u.status.value,
                "output": u.output,
                "error": u.error,
            }
            for step in self.plan.steps
        }
        context = {
            "inputs": self.original.inputs,
            "steps": steps,
            "alert": self.original.context.get("alert"),
            "run": {"id": self.original.run_id, "playbook": self.plan.name},
        }
        if extra:
            context.update(extra)
        return context


# -- event handling ---------------------------------------------------------------------


def _finish_success(b: _Builder, key: UnitKey, output: Any) -> None:
    b.update(
        key,
        status=UnitStatus.SUCCEEDED,
        output=output,
        error=None,
        next_attempt_at=None,
        finished_order=b.next_order(),
    )
    b.fact("step.succeeded" if key.phase != COMPENSATE else "compensation.succeeded", key)


def _fail(b: _Builder, key: UnitKey, error: dict[str, Any], *, kind: str = "step.failed") -> None:
    b.update(
        key,
        status=UnitStatus.FAILED,
        error=error,
        next_attempt_at=None,
        finished_order=b.next_order(),
    )
    b.fact(kind if key.phase != COMPENSATE else "compensation.failed", key, error=error)


def _policy(b: _Builder, key: UnitKey) -> RetryPolicy:
    return b.plan.step(key.step).retry if key.phase != COMPENSATE else RetryPolicy()


def _on_failed(b: _Builder, event: UnitFailed) -> None:
    unit = b.unit(event.key)
    _require(unit, UnitStatus.RUNNING, event)
    error = event.error.as_dict() | {"attempt": unit.attempts}
    if event.error.retryable and unit.attempts < unit.max_attempts:
        delay = backoff_delay(
            _policy(b, event.key),
            attempt=unit.attempts,
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
    _fail(b, event.key, error)


def _on_lost(b: _Builder, event: UnitLost) -> None:
    unit = b.unit(event.key)
    _require(unit, UnitStatus.RUNNING, event)
    step = b.plan.step(event.key.step)
    action = (
        step.action
        if event.key.phase != COMPENSATE
        else (step.compensate.action if step.compensate else None)
    )
    if unit.attempts >= unit.max_attempts:
        error = {
            "kind": "worker_lost",
            "message": f"attempt {unit.attempts} of {unit.max_attempts} lost its worker; "
            "no attempts are left, so the step waits for a person",
        }
    elif action is not None and not b.plan.safe_to_repeat(action):
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


def _on_retry_due(b: _Builder, event: RetryDue) -> None:
    unit = b.unit(event.key)
    if unit.status != UnitStatus.RETRY_WAIT:
        return  # already handled by another scheduler tick
    b.update(event.key, status=UnitStatus.QUEUED, next_attempt_at=None)
    b.commands.append(Execute(event.key))
    b.fact("step.retrying", event.key, attempt=unit.attempts + 1)


def _on_cancel(b: _Builder, event: Cancel) -> None:
    if b.status in TERMINAL_RUN:
        raise EngineError(f"the run is already {b.status.value}")
    for key, unit in list(b.units.items()):
        if unit.status in {
            UnitStatus.PENDING,
            UnitStatus.QUEUED,
            UnitStatus.RETRY_WAIT,
            UnitStatus.NEEDS_ATTENTION,
        }:
            b.update(key, status=UnitStatus.CANCELLED, reason=event.reason, next_attempt_at=None)
    running = any(u.status == UnitStatus.RUNNING for u in b.units.values())
    b.set_run_status(RunStatus.CANCELLING if running else RunStatus.CANCELLED, reason=event.reason)


def _descendants(plan: RunPlan, step_id: str) -> list[StepPlan]:
    return [s for s in plan.steps if step_id in plan.ancestors[s.id]]


def _renewed(b: _Builder, unit: Unit) -> dict[str, Any]:
    """Fields that make a unit runnable again with a fresh attempt budget and key.

    `attempts` never goes down: it is the unit's fencing token, so it must stay monotonic.
    """
    return {
        "status": UnitStatus.PENDING,
        "attempt_group": unit.attempt_group + 1,
        "max_attempts": unit.attempts + b.plan.step(unit.key.step).retry.attempts,
        "error": None,
        "reason": None,
        "next_attempt_at": None,
        "finished_order": None,
    }


def _reset_step(b: _Builder, step_id: str, *, resume_items: bool) -> None:
    """Make a step runnable again. The retried step itself keeps its succeeded items."""
    key = UnitKey(step_id)
    unit = b.unit(key)
    for item in b.state.items_of(step_id) if unit.items_total is not None else []:
        if item.status != UnitStatus.SUCCEEDED or not resume_items:
            b.update(item.key, **_renewed(b, item))
    if resume_items and unit.items_total is not None:
        b.update(key, status=UnitStatus.RUNNING, error=None, reason=None, finished_order=None)
        return
    b.update(key, output=None, **_renewed(b, unit))


def _on_retry_step(b: _Builder, event: RetryStep) -> None:
    if event.step_id not in b.plan.by_id:
        raise EngineError(f"the run has no step {event.step_id!r}")
    if b.status not in {RunStatus.FAILED, RunStatus.NEEDS_ATTENTION}:
        raise EngineError(
            f"only a failed run or one that needs attention can retry a step; this run is {b.status.value}"
        )
    unit = b.unit(UnitKey(event.step_id))
    if unit.status not in {UnitStatus.FAILED, UnitStatus.NEEDS_ATTENTION}:
        raise EngineError(
            f"step {event.step_id} is {unit.status.value}; only a failed step can be retried"
        )
    _reset_step(b, event.step_id, resume_items=True)
    for step in _descendants(b.plan, event.step_id):
        if b.unit(UnitKey(step.id)).status in {
            UnitStatus.SKIPPED,
            UnitStatus.FAILED,
            UnitStatus.NEEDS_ATTENTION,
        }:
            _reset_step(b, step.id, resume_items=False)
    for step in b.plan.steps:  # steps skipped only because the run was stopping
        if b.unit(UnitKey(step.id)).reason == STOPPING_REASON:
            _reset_step(b, step.id, resume_items=False)
    b.fact("step.retry_requested", UnitKey(event.step_id))
    b.set_run_status(RunStatus.RUNNING)


def _require(unit: Unit, status: UnitStatus, event: Event) -> None:
    if unit.status != status:
        raise EngineError(
            f"{type(event).__name__} for {unit.key} which is {unit.status.value}, not {status.value}"
        )


# -- progress -----------------------------------------------------------------------------


def _status_functions(b: _Builder, step: StepPlan) -> dict[str, Callable[[], bool]]:
    needs = [b.unit(UnitKey(n)) for n in step.needs]
    return {
        "always": lambda: True,
        "succeeded": lambda: all(u.status == UnitStatus.SUCCEEDED for u in needs),
        "failed": lambda: any(
            b.unit(UnitKey(a)).status == UnitStatus.FAILED for a in b.plan.ancestors[step.id]
        ),
        "cancelled": lambda: b.status in {RunStatus.CANCELLING, RunStatus.CANCELLED},
    }


def _skip(b: _Builder, key: UnitKey, reason: str) -> None:
    b.update(key, status=UnitStatus.SKIPPED, reason=reason, finished_order=None)
    b.fact("step.skipped", key, reason=reason)


def _queue(b: _Builder, key: UnitKey, inputs: Any) -> None:
    b.update(key, status=UnitStatus.QUEUED, inputs=inputs, error=None, reason=None)
    b.commands.append(Execute(key))
    b.fact("step.queued", key)


def _expression_error(exc: ExpressionError) -> dict[str, Any]:
    return {"kind": "expression", "message": str(exc), "retryable": False}


def _start_if_ready(b: _Builder, step: StepPlan) -> bool:
    key = UnitKey(step.id)
    if b.unit(key).status != UnitStatus.PENDING:
        return False
    needs = [b.unit(UnitKey(n)) for n in step.needs]
    if any(u.status not in TERMINAL_UNIT for u in needs):
        return False
    explicit = step.if_ is not None and uses_status_function(step.if_)
    if b.failure_seen() and b.plan.on_failure != "continue" and not explicit:
        _skip(b, key, STOPPING_REASON)
        return True
    all_succeeded = all(u.status == UnitStatus.SUCCEEDED for u in needs)
    ok = all_succeeded
    if step.if_ is not None and (explicit or all_succeeded):
        try:
            value = evaluate_condition(
                step.if_,
                b.template_context(),
                functions=_status_functions(b, step),
                path=f"steps.{step.id}.if",
            )
        except ExpressionError as exc:
            _fail(b, key, _expression_error(exc))
            return True
        ok = value if explicit else all_succeeded and value
    if not ok:
        _skip(
            b,
            key,
            "its condition was false"
            if all_succeeded or explicit
            else "a step it needs did not succeed",
        )
        return True
    if step.kind != "action":
        _fail(
            b,
            key,
            {
                "kind": "unsupported",
                "message": f"{step.kind} steps are not supported by this engine yet",
            },
        )
        return True
    if step.is_fan_out:
        _start_fan_out(b, step)
        return True
    try:
        inputs = render_value(dict(step.with_), b.template_context(), path=f"steps.{step.id}.with")
    except ExpressionError as exc:
        _fail(b, key, _expression_error(exc))
        return True
    _queue(b, key, inputs)
    return True


def _start_fan_out(b: _Builder, step: StepPlan) -> None:
    key = UnitKey(step.id)
    try:
        items = render_value(step.for_each, b.template_context(), path=f"steps.{step.id}.for_each")
    except ExpressionError as exc:
        _fail(b, key, _expression_error(exc))
        return
    if not isinstance(items, list):
        _fail(
            b,
            key,
            {
                "kind": "expression",
                "message": f"steps.{step.id}.for_each: expected a list, got {type(items).__name__}",
            },
        )
        return
    previous = b.unit(key).items_total or 0
    for index, value in enumerate(items):
        item = UnitKey(step.id, index)
        if index < previous:  # a step run again: its items were renewed by _reset_step
            b.update(item, item_value=value, output=None)
        else:
            b.create(Unit(key=item, item_value=value, max_attempts=step.retry.attempts))
    for index in range(len(items), previous):
        _skip(b, UnitKey(step.id, index), "no longer among the step's items")
    b.update(key, status=UnitStatus.RUNNING, items_total=len(items), output=None, error=None)
    b.fact("step.started", key, items=len(items))


def _feed_fan_out(b: _Builder, step: StepPlan) -> bool:
    """Queue pending items up to max_parallel; finish the step when its items are done."""
    key = UnitKey(step.id)
    if b.unit(key).status != UnitStatus.RUNNING:
        return False
    items = b.state.items_of(step.id)
    stopping = any(u.status == UnitStatus.FAILED for u in items) or b.status == RunStatus.CANCELLING
    active = sum(1 for u in items if u.status in ACTIVE_UNIT)
    limit = step.max_parallel or len(items)
    progressed = False
    for item in items:
        if item.status != UnitStatus.PENDING:
            continue
        if stopping:
            _skip(b, item.key, "another item of the step failed")
            progressed = True
            continue
        if active >= limit:
            break
        extra = {"item": item.item_value, "item_index": item.key.item}
        try:
            inputs = render_value(
                dict(step.with_),
                b.template_context(extra),
                path=f"steps.{step.id}[{item.key.item}].with",
            )
        except ExpressionError as exc:
            _fail(b, item.key, _expression_error(exc))
            stopping = progressed = True
            continue
        _queue(b, item.key, inputs)
        active += 1
        progressed = True
    items = b.state.items_of(step.id)
    if all(u.status in TERMINAL_UNIT for u in items):
        failed = [
            u.key.item for u in items if u.status in {UnitStatus.FAILED, UnitStatus.CANCELLED}
        ]
        if failed:
            _fail(
                b,
                key,
                {
                    "kind": "items_failed",
                    "message": f"{len(failed)} of {len(items)} items failed",
                    "failed_items": failed,
                },
            )
        else:
            _finish_success(b, key, [u.output for u in items])
        return True
    if not any(u.status in ACTIVE_UNIT or u.status == UnitStatus.PENDING for u in items) and any(
        u.status == UnitStatus.NEEDS_ATTENTION for u in items
    ):
        b.update(
            key,
            status=UnitStatus.NEEDS_ATTENTION,
            error={"kind": "items_need_attention", "message": "some items need attention"},
        )
        return True
    return progressed


def _compensate(b: _Builder) -> None:
    """Run compensations one at a time, in reverse order of completion."""
    units = b.main_units()
    if not b.state.compensations():
        targets = [
            u
            for u in units
            if u.status == UnitStatus.SUCCEEDED
            and u.items_total is None
            and b.plan.step(u.key.step).compensate is not None
        ]
        if not targets:
            b.set_run_status(RunStatus.FAILED, compensated=0)
            return
        for target in targets:
            b.create(
                Unit(
                    key=UnitKey(target.key.step, target.key.item, COMPENSATE),
                    item_value=target.item_value,
                    max_attempts=RetryPolicy().attempts,
                )
            )
        b.set_run_status(RunStatus.COMPENSATING)
    order = sorted(
        b.state.compensations(), key=lambda u: -(b.unit(u.key.target).finished_order or 0)
    )
    for comp in order:
        if comp.status in TERMINAL_UNIT:
            continue
        if comp.status == UnitStatus.PENDING:
            step = b.plan.step(comp.key.step)
            assert step.compensate is not None
            extra = {"item": comp.item_value, "item_index": comp.key.item}
            try:
                inputs = render_value(
                    dict(step.compensate.with_),
                    b.template_context(extra),
                    path=f"steps.{step.id}.compensate.with",
                )
            except ExpressionError as exc:
                _fail(b, comp.key, _expression_error(exc))
                continue
            _queue(b, comp.key, inputs)
        if comp.status == UnitStatus.NEEDS_ATTENTION:
            b.set_run_status(RunStatus.NEEDS_ATTENTION)
        return
    comps = b.state.compensations()
    ok = all(u.status == UnitStatus.SUCCEEDED for u in comps)
    b.set_run_status(RunStatus.COMPENSATED if ok else RunStatus.FAILED, compensated=len(comps))


def _settle(b: _Builder) -> None:
    """Decide the run's status from its units."""
    if b.status in TERMINAL_RUN:
        return
    if b.status == RunStatus.CANCELLING:
        if not any(u.status == UnitStatus.RUNNING for u in b.units.values()):
            for key, unit in list(b.units.items()):
                if unit.status not in TERMINAL_UNIT:
                    b.update(key, status=UnitStatus.CANCELLED)
            b.set_run_status(RunStatus.CANCELLED)
        return
    steps = [b.unit(UnitKey(s.id)) for s in b.plan.steps]
    if b.status == RunStatus.COMPENSATING or (
        all(u.status in TERMINAL_UNIT for u in steps)
        and b.failure_seen()
        and b.plan.on_failure == "compensate"
    ):
        _compensate(b)
        return
    if all(u.status in TERMINAL_UNIT for u in steps):
        b.set_run_status(RunStatus.FAILED if b.failure_seen() else RunStatus.SUCCEEDED)
        return
    busy = any(u.status in ACTIVE_UNIT for u in b.main_units())
    waiting = any(u.status == UnitStatus.NEEDS_ATTENTION for u in b.main_units())
    if waiting and not busy:
        b.set_run_status(RunStatus.NEEDS_ATTENTION)
    elif b.status == RunStatus.NEEDS_ATTENTION and busy:
        b.set_run_status(RunStatus.RUNNING)


def _progress(b: _Builder) -> None:
    if b.status in {RunStatus.RUNNING, RunStatus.NEEDS_ATTENTION}:
        moved = True
        while moved:
            moved = False
            for step in b.plan.steps:
                moved |= _start_if_ready(b, step)
                if step.is_fan_out:
                    moved |= _feed_fan_out(b, step)
    elif b.status == RunStatus.CANCELLING:
        for step in b.plan.steps:
            if step.is_fan_out:
                _feed_fan_out(b, step)
    _settle(b)


def advance(plan: RunPlan, state: RunState, event: Event, now: float) -> Decision:
    """Apply `event` to `state` at time `now` (seconds since the epoch)."""
    b = _Builder(plan, state, now)
    match event:
        case Start():
            b.fact("run.started")
        case UnitSucceeded(key=key, output=output):
            _require(b.unit(key), UnitStatus.RUNNING, event)
            _finish_success(b, key, output)
        case UnitFailed():
            _on_failed(b, event)
        case UnitLost():
            _on_lost(b, event)
        case RetryDue():
            _on_retry_due(b, event)
        case Cancel():
            _on_cancel(b, event)
        case RetryStep():
            _on_retry_step(b, event)
    _progress(b)
    return Decision(
        state=b.state,
        changed=frozenset(b.changed),
        created=frozenset(b.created),
        commands=tuple(b.commands),
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


__all__ = ["EngineError", "ErrorInfo", "advance", "claim", "new_run_state"]
