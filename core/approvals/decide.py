"""A person's decision on an approval request, from any channel.

The checks that need the database happen here (roles, the request's groups, four-eyes);
the engine counts the quorum and decides the gate, in the transition that also writes
the decision's row. The first valid decision wins: a repeat, or a decision on a request
already decided, changes nothing and only reports the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import IntegrityError, transaction

from accounts import roles
from accounts.permissions import actor_for, has_role
from audit.events import NewEvent, record_event
from core.approval_models import ApprovalDecision, ApprovalRequest
from core.dispatch import Message
from core.engine.advance import EngineError
from core.engine.events import Decision, Vote
from core.engine.gates import VoteRefused
from core.engine.plan import ApprovalPlan, RunPlan
from core.engine.state import UnitKey
from core.models import Run
from core.transitions import apply_event, plan_for


class DecisionRefused(Exception):
    """The person may not decide this request (403), or it cannot take decisions (409)."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class DecisionResult:
    request: ApprovalRequest
    # False when nothing changed: a repeat, or the request was decided already.
    recorded: bool


def unit_key(request: ApprovalRequest) -> UnitKey:
    """The engine's key of the unit a request belongs to."""
    unit = request.unit
    return UnitKey(unit.step_id, unit.item_index, unit.phase)


def gate_approval(request: ApprovalRequest) -> ApprovalPlan | None:
    """The approval policy of the gate a request follows (None for budget holds)."""
    gate = plan_for(request.run).by_id.get(request.gate_id) if request.gate_id else None
    return gate.approval if gate is not None else None


def group_names(user: User) -> set[str]:
    """The user's groups, looked up once per user object (a request's user lives for the
    request, so an inbox page asks once, not once per row)."""
    cached: set[str] | None = getattr(user, "_bulwark_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        setattr(user, "_bulwark_groups", cached)  # noqa: B010 - a per-request cache
    return cached


def refusal(request: ApprovalRequest, user: AbstractBaseUser | AnonymousUser) -> str | None:
    """Why `user` may not decide `request` (None when they may)."""
    if not user.is_authenticated or not isinstance(user, User):
        return "log in to decide approvals"
    if not has_role(user, roles.APPROVER):
        return "deciding approvals needs the approver role"
    if not group_names(user).intersection(request.approvers):
        groups = ", ".join(request.approvers) or "(none)"
        return f"only members of {groups} may decide this request"
    if request.four_eyes:
        run = request.run
        if run.created_by_id == user.pk or run.actor == actor_for(user):
            return "four-eyes: you started this run, so another approver must decide its gates"
        if run.version.published_by_id == user.pk:
            return (
                "four-eyes: you published the playbook version this run uses, so another "
                "approver must decide its gates"
            )
    return None


def why_not(
    request: ApprovalRequest,
    user: AbstractBaseUser | AnonymousUser,
    decisions: Iterable[ApprovalDecision],
) -> str | None:
    """Why `user` cannot decide `request` now (None when they can): it is decided, they
    decided it already (among `decisions`, the request's, as the caller has them), or
    `refusal` says why not. Pages and the API show this before anyone clicks."""
    if not request.is_open:
        return f"the request is {request.status}"
    if any(d.user_id == user.pk for d in decisions):
        return "you have decided it already"
    return refusal(request, user)


def audit_refused(request: ApprovalRequest, actor: str, channel: str, why: str) -> None:
    with transaction.atomic():
        record_event(
            stream=f"run:{request.run_id}",
            kind="approval.decision_refused",
            actor=actor,
            payload={
                "request": request.number,
                "approval": request.pk,
                "unit": request.unit_label,
                "channel": channel,
                "reason": why,
            },
            run_id=request.run_id,
            step_id=request.step_id,
        )


def decide(
    *,
    request_id: int,
    user: AbstractBaseUser | AnonymousUser,
    approve: bool,
    comment: str = "",
    channel: str = ApprovalDecision.Channel.API,
    audit_refusal: bool = True,
) -> DecisionResult:
    """Record `user`'s decision; raises DecisionRefused when they may not decide (audited,
    unless the caller's own transaction would roll that back and audits it after)."""
    request = ApprovalRequest.objects.select_related("run", "run__version", "unit").get(
        pk=request_id
    )
    actor = actor_for(user)
    if not request.is_open:
        return DecisionResult(request, recorded=False)
    why = refusal(request, user)
    if why is not None:
        if audit_refusal:
            audit_refused(request, actor, channel, why)
        raise DecisionRefused(why)
    assert isinstance(user, User)
    if request.decisions.filter(user_id=user.pk).exists():
        return DecisionResult(request, recorded=False)

    def write_decision(
        run: Run, plan: RunPlan, decision: Decision, messages: dict[UnitKey, Message]
    ) -> tuple[list[Message], list[NewEvent]]:
        ApprovalDecision.objects.create(
            request=request, user=user, actor=actor, approve=approve, comment=comment,
            channel=channel, bound_hash=request.bound_hash,
        )  # fmt: skip
        return list(messages.values()), []

    vote = Vote(unit_key(request), request.number, actor, approve, comment, channel,
                groups=tuple(sorted(group_names(user))))  # fmt: skip
    try:
        apply_event(request.run_id, vote, actor=actor, before_commit=write_decision)
    except VoteRefused as exc:  # the request moved on (escalated) since the check above
        if audit_refusal:
            audit_refused(request, actor, channel, str(exc))
        raise DecisionRefused(str(exc)) from None
    except (EngineError, IntegrityError):
        # Decided (or superseded) meanwhile, or this person's other click came first.
        request.refresh_from_db()
        return DecisionResult(request, recorded=False)
    request.refresh_from_db()
    return DecisionResult(request, recorded=True)


def decide_many(
    *,
    request_ids: list[int],
    user: AbstractBaseUser | AnonymousUser,
    approve: bool,
    comment: str = "",
    channel: str = ApprovalDecision.Channel.API,
) -> dict[int, str]:
    """Decide several requests at once (a storm of holds, a batch change); each is checked
    and recorded on its own, so one refusal does not stop the others. Returns, for each
    id, "recorded", "unchanged" or why it was refused."""
    outcomes: dict[int, str] = {}
    for request_id in request_ids:
        try:
            result = decide(request_id=request_id, user=user, approve=approve, comment=comment,
                            channel=channel)  # fmt: skip
        except ApprovalRequest.DoesNotExist:
            outcomes[request_id] = "no such request"
        except DecisionRefused as exc:
            outcomes[request_id] = exc.message
        else:
            outcomes[request_id] = "recorded" if result.recorded else "unchanged"
    return outcomes
