"""Approvals are checked again when a destructive step's turn comes (ASVS 8.3.2: a
change of authorisation takes effect at once): an approver who has since lost the
approver role, the gate's groups or their account no longer counts. If the approvals
left fall short of the quorum, the step does not act; it asks again (a hold, as for a
blast-radius budget)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q

from accounts import roles
from accounts.permissions import has_role
from core.approval_models import ApprovalRequest
from core.approvals.decide import gate_approval, group_names
from core.engine.plan import ApprovalPlan


def _still_may_approve(user: User, groups: set[str]) -> bool:
    return user.is_active and has_role(user, roles.APPROVER) and bool(group_names(user) & groups)


def _asked_groups(request: ApprovalRequest, approval: ApprovalPlan | None) -> set[str]:
    """Every group the request's policy ever asks (a decision made on an earlier rung of
    an escalation ladder is as good as one made on the last)."""
    if approval is None:
        return set(request.approvers)
    return {group for rung in approval.rungs for group in rung.approvers}


def approvals_in_force(
    *, run_id: int, step_id: str, unit_label: str, inputs: Any
) -> dict[str, Any] | None:
    """None when the approvals this destructive unit would act on still hold (or it acts
    on none, or on a timeout's decision); otherwise the hold that asks for them again."""
    covering = (
        ApprovalRequest.objects.filter(run_id=run_id, status=ApprovalRequest.Status.APPROVED)
        .filter(Q(guarded__has_key=step_id) | Q(guarded__has_key=unit_label))
        # A budget's approval lets the action exceed the budget; it is not the approval
        # of the action, which the gate (or a re-asked request) gave.
        .exclude(kind=ApprovalRequest.Kind.BUDGET)
        .select_related("run", "run__version")
        .order_by("-decided_at", "-id")
        .first()
    )
    if covering is None or covering.timed_out:
        return None  # nothing to check, or approved by its timeout as the playbook says
    approving = [d for d in covering.decisions.select_related("user") if d.approve]
    approval = gate_approval(covering)
    groups = _asked_groups(covering, approval)
    lapsed = [d.user.get_username() for d in approving if not _still_may_approve(d.user, groups)]
    if not lapsed or len(approving) - len(lapsed) >= covering.min_approvals:
        return None
    return {
        "kind": "reauthorize",
        "approvers": covering.approvers,
        "min_approvals": covering.min_approvals,
        "four_eyes": covering.four_eyes,
        "inputs": inputs,
        "no_longer_valid": lapsed,
        "message": f"the approval of request {covering.pk} no longer holds: "
        f"{', '.join(lapsed)} may no longer approve it; approve again to let {unit_label} act",
        # The new request follows its gate: the first rung's timeout, the gate's channels.
        "gate": covering.gate_id or None,
        "timeout": approval.rungs[0].timeout if approval is not None else None,
    }
