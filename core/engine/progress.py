"""Everything that follows from a run's state: which steps start, skip, finish, and how
the run ends. Level-triggered, so it also repairs a run whose progress was interrupted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.engine.builder import Builder, fail, finish_success, renewed
from core.engine.events import Execute
from core.engine.gates import gate_verdict, open_gate
from core.engine.plan import RetryPolicy, StepPlan
from core.engine.state import (
    ACTIVE_UNIT,
    COMPENSATE,
    TERMINAL_RUN,
    TERMINAL_UNIT,
    RunStatus,
    Unit,
    UnitKey,
    UnitStatus,
    resolved,
)
from playbooks.expressions import (
    ExpressionError,
    evaluate_condition,
    render_value,
    uses_status_function,
)

STOPPING_REASON = "the run is stopping after a failure"


def _status_functions(b: Builder, step: StepPlan) -> dict[str, Callable[[], bool]]:
    needs = [b.unit(UnitKey(n)) for n in step.needs]
    return {
        "always": lambda: True,
        "succeeded": lambda: all(u.status == UnitStatus.SUCCEEDED for u in needs),
        "failed": lambda: any(
            b.unit(UnitKey(a)).status == UnitStatus.FAILED for a in b.plan.ancestors[step.id]
        ),
        "cancelled": lambda: b.status in {RunStatus.CANCELLING, RunStatus.CANCELLED},
    }


def skip(b: Builder, key: UnitKey, reason: str) -> None:
    b.update(key, status=UnitStatus.SKIPPED, reason=reason, finished_order=None)
    b.fact("step.skipped", key, reason=reason)


def _queue(b: Builder, key: UnitKey, inputs: Any) -> None:
    # progress=None: a step that asked again kept its approval there until now.
    b.update(key, status=UnitStatus.QUEUED, inputs=inputs, error=None, reason=None, progress=None)
    b.commands.append(Execute(key))
    b.fact("step.queued", key)


def _expression_error(exc: ExpressionError) -> dict[str, Any]:
    return {"kind": "expression", "message": str(exc), "retryable": False}


def _start_if_ready(b: Builder, step: StepPlan) -> bool:
    key = UnitKey(step.id)
    if b.unit(key).status != UnitStatus.PENDING:
        return False
    needs = [b.unit(UnitKey(n)) for n in step.needs]
    if any(u.status not in TERMINAL_UNIT for u in needs):
        return False
    explicit = step.if_ is not None and uses_status_function(step.if_)
    if b.failure_seen() and b.plan.on_failure != "continue" and not explicit:
        skip(b, key, STOPPING_REASON)
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
            fail(b, key, _expression_error(exc))
            return True
        ok = value if explicit else all_succeeded and value
    if not ok:
        skip(
            b,
            key,
            "its condition was false"
            if all_succeeded or explicit
            else "an approval it needs was rejected"
            if any(u.status == UnitStatus.REJECTED for u in needs)
            else "a step it needs did not succeed",
        )
        return True
    if step.kind == "approval":
        open_gate(b, step)
        return True
    before = b.unit(key).status
    verdict = gate_verdict(b, step)
    if verdict == "wait":
        return b.unit(key).status != before  # it moved when it asked again
    if verdict == "failed":
        return True
    if verdict == "rejected" and not explicit:
        skip(b, key, "an approval it needs was rejected")
        return True
    if step.is_fan_out:
        _start_fan_out(b, step)
        return True
    try:
        inputs = render_value(dict(step.with_), b.template_context(), path=f"steps.{step.id}.with")
    except ExpressionError as exc:
        fail(b, key, _expression_error(exc))
        return True
    _queue(b, key, inputs)
    return True


def _start_fan_out(b: Builder, step: StepPlan) -> None:
    key = UnitKey(step.id)
    try:
        items = render_value(step.for_each, b.template_context(), path=f"steps.{step.id}.for_each")
    except ExpressionError as exc:
        fail(b, key, _expression_error(exc))
        return
    if not isinstance(items, list):
        fail(
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
        elif item in b.units:  # left over, skipped, from an earlier and longer list
            b.update(item, item_value=value, output=None, **renewed(b, b.unit(item)))
        else:
            b.create(Unit(key=item, item_value=value, max_attempts=step.retry.attempts))
    for index in range(len(items), previous):
        skip(b, UnitKey(step.id, index), "no longer among the step's items")
    b.update(key, status=UnitStatus.RUNNING, items_total=len(items), output=None, error=None,
             progress=None)  # fmt: skip
    b.fact("step.started", key, items=len(items))


def _feed_fan_out(b: Builder, step: StepPlan) -> bool:
    """Queue pending items up to max_parallel; finish the step when its items are done."""
    key = UnitKey(step.id)
    if b.unit(key).status != UnitStatus.RUNNING:
        return False
    items = b.state.items_of(step.id)
    stopping = (
        any(u.status == UnitStatus.FAILED for u in items)
        or b.status == RunStatus.CANCELLING
        or (b.failure_seen() and b.plan.on_failure != "continue")
    )
    active = sum(1 for u in items if u.status in ACTIVE_UNIT)
    limit = step.max_parallel or len(items)
    progressed = False
    for item in items:
        if item.status != UnitStatus.PENDING:
            continue
        if stopping:
            skip(
                b,
                item.key,
                STOPPING_REASON if b.status != RunStatus.CANCELLING else "the run was cancelled",
            )
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
            fail(b, item.key, _expression_error(exc))
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
        rejected = [u.key.item for u in items if u.status == UnitStatus.REJECTED]
        if rejected and not failed:
            # People said no to some items: the step did not do all it is for, and what
            # needs it is skipped, as after a rejected gate.
            what = f"{len(rejected)} of {len(items)} items were not approved"
            error = {"kind": "items_rejected", "rejected_items": rejected, "message": what}
            b.update(key, status=UnitStatus.REJECTED, next_attempt_at=None, reason=what,
                     error=error)  # fmt: skip
            b.fact("step.rejected", key, rejected_items=rejected)
        elif failed:
            fail(
                b,
                key,
                {
                    "kind": "items_failed",
                    "message": f"{len(failed)} of {len(items)} items failed",
                    "failed_items": failed,
                },
            )
        else:
            finish_success(b, key, [resolved(u.output) for u in items])
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


def _compensate(b: Builder) -> None:
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
                fail(b, comp.key, _expression_error(exc))
                continue
            _queue(b, comp.key, inputs)
        if comp.status == UnitStatus.NEEDS_ATTENTION:
            b.set_run_status(RunStatus.NEEDS_ATTENTION)
        return
    comps = b.state.compensations()
    ok = all(u.status == UnitStatus.SUCCEEDED for u in comps)
    b.set_run_status(RunStatus.COMPENSATED if ok else RunStatus.FAILED, compensated=len(comps))


def _settle(b: Builder) -> None:
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
    # A for_each step's own unit is `running` while its items are: it is no work itself.
    main = [
        u for u in b.main_units()
        if not (u.key.is_step and u.status == UnitStatus.RUNNING and b.plan.step(u.key.step).is_fan_out)
    ]  # fmt: skip
    if any(u.status in ACTIVE_UNIT for u in main):
        if b.status in {RunStatus.NEEDS_ATTENTION, RunStatus.WAITING_APPROVAL}:
            b.set_run_status(RunStatus.RUNNING)
    elif any(u.status == UnitStatus.NEEDS_ATTENTION for u in main):
        b.set_run_status(RunStatus.NEEDS_ATTENTION)
    elif any(u.status == UnitStatus.WAITING_APPROVAL for u in main):
        b.set_run_status(RunStatus.WAITING_APPROVAL)


def _withdraw_requests(b: Builder) -> None:
    """A run that stops after a failure asks nobody any more: what a waiting request
    would allow is skipped anyway."""
    for key, unit in list(b.units.items()):
        if unit.status == UnitStatus.WAITING_APPROVAL and key.phase != COMPENSATE:
            b.update(key, next_attempt_at=None)
            skip(b, key, STOPPING_REASON)
            b.fact("approval.withdrawn", key, reason=STOPPING_REASON)


def progress(b: Builder) -> None:
    if b.status in {RunStatus.RUNNING, RunStatus.NEEDS_ATTENTION, RunStatus.WAITING_APPROVAL}:
        if b.failure_seen() and b.plan.on_failure != "continue":
            _withdraw_requests(b)
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
