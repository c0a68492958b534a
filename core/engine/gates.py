"""Approval gates and budget holds in the pure engine: asking, counting, timing out.

A unit that waits for people is `waiting_approval`; its `progress` is the open request
(who may decide, the quorum, the approvals so far, the deadline, the inputs it is bound
to). Nothing holds a worker meanwhile: the scheduler wakes the unit at `next_attempt_at`
for a reminder, an escalation or the timeout, and decisions arrive as Vote events.

A decision is bound to the hash of the resolved inputs of the destructive steps the
gate guards. When such a step is about to run with other inputs than were approved, the
step itself asks again, under its gate's policy, bound to the inputs it would be sent
(see `gate_verdict`); the gate's own decision stands for what it approved.

Request numbers are unique per unit: each unit counts the requests it opened
(`requests_made`), whatever it went through meanwhile (retries, resets, holds).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from audit.hashing import canonical_json
from core.engine.builder import Builder, EngineError, fail
from core.engine.events import Execute, UnitHeld, Vote
from core.engine.plan import ApprovalPlan, StepPlan
from core.engine.state import UnitKey, UnitStatus, resolved
from playbooks.expressions import ExpressionError, render_value


class VoteRefused(EngineError):
    """The voter may not decide the request as it stands now (it moved on meanwhile)."""


GATE = "gate"
BUDGET = "budget"
# The approvals a destructive step would act on no longer hold (an approver lost the
# right to approve between deciding and the step's turn): it asks for them again.
REAUTHORIZE = "reauthorize"
HOLDS = frozenset({BUDGET, REAUTHORIZE})


def inputs_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of `value` (what a decision is bound to)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def resolve_step_inputs(b: Builder, step: StepPlan) -> Any:
    """The inputs `step` would be sent with now; for a for_each step, one per item.
    Raises ExpressionError when they cannot be resolved yet."""
    context = b.template_context()
    if not step.is_fan_out:
        return render_value(dict(step.with_), context, path=f"steps.{step.id}.with")
    items = render_value(step.for_each, context, path=f"steps.{step.id}.for_each")
    if not isinstance(items, list):
        raise ExpressionError(
            f"expected a list, got {type(items).__name__}", path=f"steps.{step.id}.for_each"
        )
    return [
        render_value(
            dict(step.with_),
            b.template_context({"item": item, "item_index": index}),
            path=f"steps.{step.id}[{index}].with",
        )
        for index, item in enumerate(items)
    ]


def _guarded_inputs(b: Builder, gate_id: str) -> dict[str, Any]:
    guarded: dict[str, Any] = {}
    for step_id in b.plan.guards.get(gate_id, ()):
        try:
            guarded[step_id] = resolve_step_inputs(b, b.plan.step(step_id))
        except ExpressionError as exc:
            # It depends on something not known yet: it will be asked about again when
            # it is about to run, with the inputs it will really be sent.
            guarded[step_id] = {"unresolved": exc.message}
    return guarded


def _next_due(progress: dict[str, Any]) -> float | None:
    times = [t for t in (progress.get("deadline"), progress.get("next_reminder")) if t is not None]
    return min(times) if times else None


def _next_number(b: Builder, key: UnitKey) -> int:
    """The number of the unit's next request (its count only grows, so a number is never
    used twice, whatever the unit went through: retries, resets, holds)."""
    return b.unit(key).requests_made + 1


def _open(b: Builder, key: UnitKey, progress: dict[str, Any], **fact: Any) -> None:
    b.update(
        key,
        requests_made=progress["request"],
        status=UnitStatus.WAITING_APPROVAL,
        progress=progress,
        next_attempt_at=_next_due(progress),
        output=None,
        error=None,
        reason=None,
    )
    b.fact(
        "approval.requested",
        key,
        request_kind=progress["kind"],
        request=progress["request"],
        approvers=progress["approvers"],
        min_approvals=progress["min_approvals"],
        four_eyes=progress["four_eyes"],
        message=progress["message"],
        guarded=progress["guarded"],
        bound_hash=progress["bound_hash"],
        deadline=progress["deadline"],
        **({"gate": progress["gate"]} if "gate" in progress else {}),
        **fact,
    )


def _four_eyes(b: Builder, gate: StepPlan, approval: ApprovalPlan) -> bool:
    if approval.four_eyes is not None:
        return approval.four_eyes
    return bool(b.plan.guards.get(gate.id))


def _message(b: Builder, gate: StepPlan, approval: ApprovalPlan) -> str:
    if approval.message is None:
        return ""
    path = f"steps.{gate.id}.approval.message"
    return str(render_value(approval.message, b.template_context(), path=path))


def _request(
    b: Builder, gate: StepPlan, approval: ApprovalPlan, guarded: dict[str, Any], number: int
) -> dict[str, Any]:
    """An open request of `gate`'s first rung about `guarded` (step id → inputs)."""
    rung = approval.rungs[0]
    return {
        "kind": GATE,
        "gate": gate.id,
        "request": number,
        "rung": 0,
        "approvers": list(rung.approvers),
        "min_approvals": approval.min_approvals,
        "approvals": [],
        "four_eyes": _four_eyes(b, gate, approval),
        "message": _message(b, gate, approval),
        "guarded": guarded,
        "bound": {step_id: inputs_hash(value) for step_id, value in guarded.items()},
        "bound_hash": inputs_hash(guarded),
        "requested_at": b.now,
        "deadline": None if rung.timeout is None else b.now + rung.timeout,
        "next_reminder": None if approval.remind_every is None else b.now + approval.remind_every,
        "reminders": 0,
    }


def open_gate(b: Builder, step: StepPlan) -> None:
    """Ask the gate's first rung for a decision on the guarded steps' current inputs."""
    key = UnitKey(step.id)
    assert step.approval is not None
    try:
        progress = _request(b, step, step.approval, _guarded_inputs(b, step.id),
                            _next_number(b, key))  # fmt: skip
    except ExpressionError as exc:
        fail(b, key, {"kind": "expression", "message": str(exc), "retryable": False})
        return
    _open(b, key, progress)


def _ask_again(
    b: Builder, step: StepPlan, gate: StepPlan, inputs: Any, approved: dict[str, Any]
) -> None:
    """`step` is about to run with other inputs than its gate approved: it waits for a
    decision on the inputs it would be sent, under the gate's policy."""
    key = UnitKey(step.id)
    assert gate.approval is not None
    try:
        progress = _request(b, gate, gate.approval, {step.id: inputs},
                            _next_number(b, key))  # fmt: skip
    except ExpressionError as exc:
        fail(b, key, {"kind": "expression", "message": str(exc), "retryable": False})
        return
    reason = (
        f"the inputs of {step.id} differ from those approved in request "
        f"{approved.get('request')} of {gate.id}"
    )
    _open(b, key, progress, reason=reason, previous_hash=approved.get("bound_hash"))


def hold_unit(b: Builder, event: UnitHeld) -> None:
    """A destructive action that may not act now (its budget is spent, or its approvals no
    longer hold) asks for an approval instead. Its claim did not use up an attempt (the
    budget grows by one, as for a poll)."""
    unit = b.unit(event.key)
    hold = event.hold
    kind = REAUTHORIZE if hold.get("kind") == REAUTHORIZE else BUDGET
    inputs = hold.get("inputs")
    progress: dict[str, Any] = {
        "kind": kind,
        "request": _next_number(b, event.key),
        "rung": 0,
        "approvers": list(hold.get("approvers") or []),
        "min_approvals": int(hold.get("min_approvals") or 1),
        "approvals": [],
        "four_eyes": bool(hold.get("four_eyes", True)),
        "message": str(hold.get("message") or ""),
        "guarded": {str(event.key): inputs},
        "bound": {str(event.key): inputs_hash(inputs)},
        "bound_hash": inputs_hash({str(event.key): inputs}),
        "requested_at": b.now,
        "deadline": None if hold.get("timeout") is None else b.now + float(hold["timeout"]),
        "next_reminder": None,
        "reminders": 0,
    }
    if kind == REAUTHORIZE and hold.get("gate"):
        progress["gate"] = hold["gate"]  # announced on the gate's channels
    b.update(event.key, max_attempts=unit.max_attempts + 1)
    if kind == BUDGET:
        budget = {k: hold[k] for k in ("action", "limit", "window_seconds", "used") if k in hold}
        progress["budget"] = budget
        b.fact("budget.held", event.key, **budget, attempt=unit.attempts)
    else:
        b.fact("approval.reauthorization_needed", event.key, attempt=unit.attempts,
               message=progress["message"], no_longer_valid=hold.get("no_longer_valid", []))  # fmt: skip
    _open(b, event.key, progress)


def _progress(b: Builder, key: UnitKey) -> dict[str, Any]:
    progress = b.unit(key).progress
    if not isinstance(progress, dict) or "kind" not in progress:
        raise EngineError(f"{key} is waiting for an approval but keeps no request")
    return progress


def _decide(
    b: Builder, key: UnitKey, outcome: str, *, timed_out: bool = False, **fact: Any
) -> None:
    progress = _progress(b, key)
    decided = {**progress, "outcome": outcome, "decided_at": b.now, "timed_out": timed_out}
    b.fact(
        f"approval.{outcome}",
        key,
        request_kind=progress["kind"],
        request=progress["request"],
        approvals=progress["approvals"],
        bound_hash=progress["bound_hash"],
        timed_out=timed_out,
        **({"budget": progress["budget"]} if "budget" in progress else {}),
        **fact,
    )
    if progress["kind"] in HOLDS:
        if outcome == "approved":
            # Acts now; the shell records the override against the budget.
            b.update(key, status=UnitStatus.QUEUED, progress=None, next_attempt_at=None)
            b.commands.append(Execute(key))
            b.fact("step.queued", key)
        else:
            b.update(
                key,
                status=UnitStatus.REJECTED,
                progress=decided,
                next_attempt_at=None,
                reason="held by its budget and not approved"
                if progress["kind"] == BUDGET
                else "its approvals no longer held, and the new request was rejected",
                error={"kind": progress["kind"], "message": "held back; the request was rejected"},
            )
        return
    if progress.get("gate") not in (None, key.step):
        # A step that asked again: approved, it runs with what was approved (gate_verdict
        # finds the approval in its progress); rejected, it does not run.
        if outcome == "approved":
            approval = {"approved": progress["bound"][key.step], "request": progress["request"]}
            b.update(key, status=UnitStatus.PENDING, progress=approval, next_attempt_at=None)
        else:
            b.update(
                key, status=UnitStatus.REJECTED, progress=decided, next_attempt_at=None,
                reason="its inputs changed since the approval and the new request was rejected",
            )  # fmt: skip
        return
    output = {
        "outcome": outcome,
        "request": progress["request"],
        "approved_by": progress["approvals"],
        "rejected_by": fact.get("rejected_by", []),
        "timed_out": timed_out,
        "bound": progress["bound"],
        "bound_hash": progress["bound_hash"],
    }
    if outcome == "approved":
        b.update(
            key,
            status=UnitStatus.SUCCEEDED,
            output=output,
            progress=decided,
            next_attempt_at=None,
            finished_order=b.next_order(),
        )
    else:
        b.update(
            key, status=UnitStatus.REJECTED, output=output, progress=decided, next_attempt_at=None,
            reason="the approval was rejected" if not timed_out else "the approval timed out",
        )  # fmt: skip


def on_vote(b: Builder, event: Vote) -> None:
    unit = b.unit(event.key)
    if unit.status != UnitStatus.WAITING_APPROVAL:
        raise EngineError(f"{event.key} is {unit.status.value}, not waiting for an approval")
    progress = _progress(b, event.key)
    if progress["request"] != event.request:
        raise EngineError(
            f"request {event.request} of {event.key} is no longer open (request "
            f"{progress['request']} is)"
        )
    if event.voter in progress["approvals"]:
        raise EngineError(f"{event.voter} has approved request {event.request} already")
    if event.groups is not None and not set(event.groups) & set(progress["approvers"]):
        # Checked again under the run's lock: the request may have escalated meanwhile.
        raise VoteRefused(
            f"{event.voter} is not in the groups request {event.request} now asks: "
            + ", ".join(progress["approvers"])
        )
    vote = {
        "request": event.request,
        "voter": event.voter,
        "decision": "approve" if event.approve else "reject",
        "comment": event.comment,
        "channel": event.channel,
        "bound_hash": progress["bound_hash"],
    }
    if not event.approve:
        b.fact("approval.decision", event.key, **vote)
        _decide(b, event.key, "rejected", rejected_by=[event.voter], comment=event.comment)
        return
    approvals = [*progress["approvals"], event.voter]
    b.update(event.key, progress={**progress, "approvals": approvals})
    b.fact("approval.decision", event.key, **vote, approvals=len(approvals),
           needed=progress["min_approvals"])  # fmt: skip
    if len(approvals) >= progress["min_approvals"]:
        _decide(b, event.key, "approved")


def on_due(b: Builder, key: UnitKey) -> None:
    """The scheduler woke a waiting request: time it out, escalate it, or remind."""
    progress = _progress(b, key)
    deadline = progress.get("deadline")
    if deadline is not None and b.now >= deadline:
        _time_out(b, key, progress)
        return
    reminder = progress.get("next_reminder")
    if reminder is not None and b.now >= reminder:
        approval = _policy(b, progress)
        every = approval.remind_every if approval else None
        progress = {
            **progress,
            "reminders": progress["reminders"] + 1,
            "next_reminder": None if every is None else b.now + every,
        }
        b.update(key, progress=progress, next_attempt_at=_next_due(progress))
        b.fact("approval.reminder", key, request=progress["request"],
               approvers=progress["approvers"], reminder=progress["reminders"])  # fmt: skip
        return
    b.update(key, next_attempt_at=_next_due(progress))  # woken early: sleep again


def _policy(b: Builder, progress: dict[str, Any]) -> ApprovalPlan | None:
    """The reminders, escalation and timeout outcome a request follows: its gate's. A hold
    follows none of them (it is announced on its gate's channels, if it has one): on
    timeout it is rejected, failing closed."""
    gate = progress.get("gate")
    if gate is None or progress["kind"] in HOLDS:
        return None
    return b.plan.step(gate).approval


def _time_out(b: Builder, key: UnitKey, progress: dict[str, Any]) -> None:
    approval = _policy(b, progress)
    b.fact("approval.timed_out", key, request=progress["request"], rung=progress["rung"],
           approvers=progress["approvers"], approvals=progress["approvals"])  # fmt: skip
    if approval is not None and approval.on_timeout == "escalate":
        rung = progress["rung"] + 1
        if rung < len(approval.rungs):
            nxt = approval.rungs[rung]
            progress = {
                **progress,
                "rung": rung,
                "approvers": list(nxt.approvers),
                "deadline": None if nxt.timeout is None else b.now + nxt.timeout,
            }
            b.update(key, progress=progress, next_attempt_at=_next_due(progress))
            b.fact("approval.escalated", key, request=progress["request"], rung=rung,
                   approvers=progress["approvers"], deadline=progress["deadline"])  # fmt: skip
            return
    outcome = (
        "approved" if approval is not None and approval.on_timeout == "approve" else "rejected"
    )
    _decide(b, key, outcome, timed_out=True)


Verdict = Literal["go", "wait", "rejected", "failed"]


def gate_verdict(b: Builder, step: StepPlan) -> Verdict:
    """May `step`, about to run, act? Its gate must have approved the inputs it will be
    sent now: "go". If they differ, the step asks again and "wait"s for that decision;
    "rejected" when its gate said no or never decided (the gate need not be one of its own
    needs: gate → x → step)."""
    gate_id = b.plan.guarded_by.get(step.id)
    if gate_id is None:
        return "go"
    gate = b.unit(UnitKey(gate_id))
    if gate.status == UnitStatus.WAITING_APPROVAL:
        return "wait"
    output = resolved(gate.output)
    if gate.status != UnitStatus.SUCCEEDED or not isinstance(output, dict):
        # Rejected, or never decided (skipped, failed, cancelled): fail closed. The step
        # may still run through an explicit `if` of its own, which the caller honours
        # (and the publish guardrail refuses unless the playbook is autonomous).
        return "rejected"
    try:
        inputs = resolve_step_inputs(b, step)
    except ExpressionError as exc:
        if step.is_fan_out:
            # Its items are rendered one by one as they are queued: some would act before
            # the bad one failed, on inputs nobody was shown. None acts.
            fail(
                b, UnitKey(step.id), {"kind": "expression", "message": str(exc), "retryable": False}
            )
            return "failed"
        return "go"  # its own rendering fails at once, as for any step
    current = inputs_hash(inputs)
    own = b.unit(UnitKey(step.id)).progress
    if (output.get("bound") or {}).get(step.id) == current:
        return "go"
    if isinstance(own, dict) and own.get("approved") == current:
        return "go"  # asked again, and these are the inputs that were approved
    _ask_again(b, step, b.plan.step(gate_id), inputs, output)
    return "wait"
