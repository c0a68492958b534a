"""Approvals are checked again when a destructive step's turn comes (ASVS 8.3.2: a
change of authorisation takes effect at once): an approver who has since lost the
approver role, the gate's groups or their account no longer counts. If the approvals
left fall short of the quorum, the step does not act; it asks again (a hold, as for a
blast-radius budget)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from core.approval_models import ApprovalRequest
from core.approvals.decide import refusal


def approvals_in_force(
    *, run_id: int, step_id: str, unit_label: str, inputs: Any
) -> dict[str, Any] | None:
    """None when the approvals this destructive unit would act on still hold (or it acts
    on none, or on a timeout's); otherwise the hold that asks for them again."""
    covering = (
        ApprovalRequest.objects.filter(run_id=run_id, status=ApprovalRequest.Status.APPROVED)
        .filter(Q(guarded__has_key=step_id) | Q(guarded__has_key=unit_label))
        .order_by("-decided_at", "-id")
        .first()
    )
    if covering is None:
        return None
    approving = [d for d in covering.decisions.select_related("user") if d.approve]
    if not approving:
        return None  # approved by its timeout (on_timeout: approve), as the playbook says
    lapsed = [
        d.user.get_username()
        for d in approving
        if not d.user.is_active or refusal(covering, d.user) is not None
    ]
    if len(approving) - len(lapsed) >= covering.min_approvals:
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
    }
