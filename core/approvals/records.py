"""Approval requests as rows, kept in step with the engine's facts in the same transaction.

The engine decides (core.engine.gates); this module writes what it decided where the
inbox, the links and the auditors find it, and records each announcement to send once the
transaction commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from core.approval_models import ActionBudget, ApprovalNotice, ApprovalRequest, BudgetUse
from core.engine.events import Decision
from core.engine.plan import RunPlan
from core.engine.state import UnitKey


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _open_request(run_id: int, unit_id: int, key: UnitKey, progress: Mapping[str, Any],
                  reason: str) -> ApprovalRequest:  # fmt: skip
    fields = {
        "run_id": run_id,
        "step_id": key.step,
        "unit_label": str(key),
        "gate_id": progress.get("gate") or "",
        "kind": progress["kind"],
        "status": ApprovalRequest.Status.PENDING,
        "approvers": progress["approvers"],
        "rung": progress["rung"],
        "min_approvals": progress["min_approvals"],
        "four_eyes": progress["four_eyes"],
        "message": progress["message"],
        "guarded": progress["guarded"],
        "bound_hash": progress["bound_hash"],
        "budget": progress.get("budget"),
        "deadline": _ts(progress.get("deadline")),
        "requested_at": _ts(progress["requested_at"]) or timezone.now(),
        "reason": reason,
        "reminders": 0,
        "decided_at": None,
        "timed_out": False,
    }
    # A unit's request numbers only grow (Unit.requests_made): a clash would be a bug, and
    # the unique constraint refuses it rather than reuse a row with its decisions.
    return ApprovalRequest.objects.create(unit_id=unit_id, number=progress["request"], **fields)


def _override_budget(unit_id: int, attempt_group: int, action: str) -> None:
    budget = ActionBudget.objects.filter(action=action).first()
    if budget is not None:
        BudgetUse.objects.get_or_create(
            unit_id=unit_id,
            attempt_group=attempt_group,
            defaults={"budget": budget, "used_at": timezone.now(), "override": True},
        )


def _no_notice(
    plan: RunPlan, request_id: int, gate: str | None, occasion: str
) -> list[tuple[int, str]]:
    return []


def _notice(
    plan: RunPlan, request_id: int, gate: str | None, occasion: str
) -> list[tuple[int, str]]:
    """A notice to send, when the request's gate names channels to announce it on."""
    step = plan.by_id.get(gate) if gate else None
    if step is None or step.approval is None or not step.approval.notify:
        return []
    notice = ApprovalNotice.objects.create(request_id=request_id, occasion=occasion)
    return [(notice.pk, occasion)]


def record_approvals(
    run_id: int,
    plan: RunPlan,
    decision: Decision,
    unit_ids: Mapping[UnitKey, int],
    *,
    announce_them: bool = True,
) -> list[tuple[int, str]]:
    """Write the approval facts of `decision`; returns (notice id, fact kind) for each
    announcement to send after COMMIT (see core.approvals.notify), none without
    `announce_them`."""
    announce: list[tuple[int, str]] = []
    notice = _notice if announce_them else _no_notice
    for fact in decision.facts:
        if not fact.kind.startswith("approval.") or fact.key is None:
            continue
        unit = decision.state.units[fact.key]
        unit_id = unit_ids[fact.key]
        payload = fact.payload
        if fact.kind == "approval.requested":
            request = _open_request(run_id, unit_id, fact.key, unit.progress,
                                    str(payload.get("reason") or ""))  # fmt: skip
            announce += notice(plan, request.pk, request.gate_id, fact.kind)
            continue
        current = ApprovalRequest.objects.filter(
            unit_id=unit_id, status=ApprovalRequest.Status.PENDING
        )
        if "request" in payload:
            current = current.filter(number=payload["request"])
        now = timezone.now()
        if fact.kind in ("approval.approved", "approval.rejected"):
            status = fact.kind.removeprefix("approval.")
            current.update(status=status, decided_at=now, timed_out=bool(payload.get("timed_out")))
            if status == "approved" and payload.get("request_kind") == "budget":
                action = str((payload.get("budget") or {}).get("action", ""))
                _override_budget(unit_id, unit.attempt_group, action)
        elif fact.kind == "approval.withdrawn":
            current.update(status=ApprovalRequest.Status.WITHDRAWN, decided_at=now)
        elif fact.kind == "approval.escalated":
            current.update(approvers=payload["approvers"], rung=payload["rung"],
                           deadline=_ts(payload.get("deadline")))  # fmt: skip
            for pk, gate in current.values_list("pk", "gate_id"):
                announce += notice(plan, pk, gate, fact.kind)
        elif fact.kind == "approval.reminder":
            current.update(reminders=payload["reminder"])
            for pk, gate in current.values_list("pk", "gate_id"):
                announce += notice(plan, pk, gate, fact.kind)
    return announce
