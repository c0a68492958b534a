"""Blast-radius budgets (SPEC §3): a destructive action's uses per window, across runs.

A worker takes one use of the budget before it acts; an attempt group counts once, so a
retry does not count again. When the window is full the unit does not act: it waits for
an approval (core.engine.gates.hold_unit), and an approved hold is recorded as an
override use, which the next claim finds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import roles
from core.approval_models import ActionBudget, BudgetUse


def _window_text(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}s" if count != 1 else unit
    return f"{seconds} s"


def take_budget(
    *, action: str, unit_id: int, attempt_group: int, inputs: Any
) -> dict[str, Any] | None:
    """Use one of `action`'s budget for this attempt group; None when it may act, or the
    hold (for the engine's UnitHeld) when the budget is spent."""
    if not ActionBudget.objects.filter(action=action, enabled=True).exists():
        return None
    with transaction.atomic():
        if BudgetUse.objects.filter(unit_id=unit_id, attempt_group=attempt_group).exists():
            return None  # counted already (a retry or a poll), or an approved override
        # The lock serialises the count and the insert across workers.
        budget = ActionBudget.objects.select_for_update().get(action=action)
        now = timezone.now()
        used = BudgetUse.objects.filter(
            budget=budget, used_at__gt=now - timedelta(seconds=budget.window_seconds)
        ).count()
        if used < budget.limit:
            BudgetUse.objects.create(
                budget=budget, unit_id=unit_id, attempt_group=attempt_group, used_at=now
            )
            return None
    window = _window_text(budget.window_seconds)
    return {
        "action": action,
        "limit": budget.limit,
        "window_seconds": budget.window_seconds,
        "used": used,
        "approvers": list(budget.approvers or [roles.APPROVER]),
        "timeout": budget.hold_timeout_seconds,
        "inputs": inputs,
        "message": f"{action} has been used {used} times in the last {window}, its budget "
        f"is {budget.limit}: approve to act anyway",
    }
