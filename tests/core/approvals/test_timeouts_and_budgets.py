"""Time at the gates (the scheduler times out, escalates and reminds), asking again when
inputs change, and blast-radius budget holds, in the database shell."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from audit.models import AuditEvent
from core.approval_models import ActionBudget, ApprovalRequest, BudgetUse
from core.dispatch import InlineDispatcher
from core.models import Attempt, StepRun
from core.reconciler import sweep
from tests.conftest import client_for
from tests.core.approvals.helpers import CALLS, IC, approver, gated, start
from tests.core.factories import definition, echo

pytestmark = pytest.mark.django_db(transaction=True)


def later(time_machine: Any, **delta: float) -> None:
    time_machine.move_to(timezone.now() + timedelta(**delta))


def decide(user: User, request: ApprovalRequest, decision: str = "approve") -> Any:
    return client_for(user).post(f"/api/v1/approvals/{request.pk}/decision/",
                                 {"decision": decision}, format="json")  # fmt: skip


@pytest.mark.parametrize(
    ("on_timeout", "status", "calls"), [("reject", "rejected", 0), ("approve", "approved", 1)]
)
def test_the_scheduler_times_a_gate_out(
    on_timeout: str, status: str, calls: int, inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now())
    run = start(gated(timeout="30m", on_timeout=on_timeout), inline_dispatch)
    request = ApprovalRequest.objects.get(run=run)
    assert request.deadline is not None
    later(time_machine, minutes=29)
    sweep()
    request.refresh_from_db()
    assert request.status == "pending"
    later(time_machine, minutes=2)
    assert sweep().retries_fired == 1
    inline_dispatch.drain()
    request.refresh_from_db()
    assert (request.status, request.timed_out) == (status, True)
    assert len(CALLS) == calls
    run.refresh_from_db()
    assert run.status == "succeeded"
    timed_out = AuditEvent.objects.get(run_id=run.pk, kind="approval.timed_out")
    assert timed_out.actor == "system:scheduler"


def test_an_unanswered_gate_escalates_to_the_next_group(
    inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now())
    erin, lead = approver("erin", IC), approver("lena", "soc-leads")
    defn = gated(timeout="10m", on_timeout="escalate", escalate_to=[{"approvers": ["soc-leads"]}],
                 notify=[{"email": []}])  # fmt: skip
    run = start(defn, inline_dispatch)
    request = ApprovalRequest.objects.get(run=run)
    assert decide(lead, request).status_code == 403  # not asked yet
    later(time_machine, minutes=11)
    sweep()
    request.refresh_from_db()
    assert (request.approvers, request.rung, request.status) == (["soc-leads"], 1, "pending")
    assert decide(erin, request).status_code == 403  # the first rung is no longer asked
    assert decide(lead, request).json()["status"] == "approved"
    inline_dispatch.drain()
    assert [c["host"] for c in CALLS] == ["aid-1"]
    kinds = list(AuditEvent.objects.filter(run_id=run.pk).values_list("kind", flat=True))
    assert kinds.count("approval.escalated") == 1
    assert [o for _, o in inline_dispatch.announced] == ["approval.requested", "approval.escalated"]


def test_reminders_are_audited_and_announced(
    inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now())
    run = start(gated(timeout="1h", remind_every="15m", notify=[{"email": []}]), inline_dispatch)
    for _ in range(3):
        later(time_machine, minutes=15, seconds=1)
        sweep()
        inline_dispatch.drain()
    request = ApprovalRequest.objects.get(run=run)
    assert request.reminders == 3
    assert AuditEvent.objects.filter(run_id=run.pk, kind="approval.reminder").count() == 3
    notices = request.notices.order_by("id")
    assert [n.occasion for n in notices] == ["approval.requested"] + ["approval.reminder"] * 3
    assert {n.status for n in notices} == {"done"}


def test_a_step_whose_inputs_changed_since_the_approval_asks_again(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, frank = approver("erin", IC), approver("frank", IC)
    gate = {"id": "approve", "approval": {"approvers": [IC]}}
    lookup = echo("lookup", **{"with": {"message": "aid-42"}})
    isolate = {"id": "isolate", "needs": ["approve", "lookup"], "action": "approvaltests.contain",
               "with": {"host": "{{ steps.lookup.output.message }}"}}  # fmt: skip
    defn = definition(gate, lookup, isolate, name="late-host",
                      inputs={"host": {"type": "string"}})  # fmt: skip
    run = start(defn, inline_dispatch, user=bob)
    first = ApprovalRequest.objects.get(run=run, number=1)
    # lookup ran in parallel with the gate, so its output is known by now.
    assert decide(erin, first).json()["status"] == "approved"
    inline_dispatch.drain()
    run.refresh_from_db()
    assert CALLS == []
    assert run.status == "waiting_approval"
    second = ApprovalRequest.objects.get(run=run, step_id="isolate")
    assert (second.status, second.gate_id, second.kind) == ("pending", "approve", "gate")
    assert second.guarded == {"isolate": {"host": "aid-42"}}
    assert second.bound_hash != first.bound_hash
    assert "differ from those approved in request 1 of approve" in second.reason
    assert decide(frank, second).json()["status"] == "approved"
    inline_dispatch.drain()
    assert [c["host"] for c in CALLS] == ["aid-42"]


def budgeted_playbook() -> dict[str, Any]:
    step = {
        "id": "isolate",
        "action": "approvaltests.contain",
        "with": {"host": "{{ inputs.host }}"},
    }
    return definition(step, name="storm", autonomous=True,
                      inputs={"host": {"type": "string", "required": True}})  # fmt: skip


def test_a_destructive_action_over_its_budget_waits_for_an_approval(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin = approver("erin")  # the approver role's own group decides holds by default
    ActionBudget.objects.create(action="approvaltests.contain", limit=2, window_seconds=3600)
    runs = [start(budgeted_playbook(), inline_dispatch, user=bob, host=f"h{i}") for i in range(3)]
    assert [c["host"] for c in CALLS] == ["h0", "h1"]
    held = runs[2]
    assert held.status == "waiting_approval"
    unit = StepRun.objects.get(run=held, step_id="isolate")
    assert unit.status == "waiting_approval"
    assert Attempt.objects.get(unit=unit).outcome == "held"
    request = ApprovalRequest.objects.get(run=held)
    assert (request.kind, request.approvers, request.four_eyes) == ("budget", ["approver"], True)
    assert request.budget == {"action": "approvaltests.contain", "limit": 2,
                              "window_seconds": 3600, "used": 2}  # fmt: skip
    assert request.guarded == {"isolate": {"host": "h2"}}
    assert "used 2 times in the last hour" in request.message
    hold = AuditEvent.objects.get(run_id=held.pk, kind="budget.held")
    assert hold.payload["limit"] == 2
    assert decide(erin, request).json()["status"] == "approved"
    inline_dispatch.drain()
    held.refresh_from_db()
    assert held.status == "succeeded"
    assert [c["host"] for c in CALLS] == ["h0", "h1", "h2"]
    assert BudgetUse.objects.filter(override=True).count() == 1
    # Three uses are on record; the next run is held again.
    start(budgeted_playbook(), inline_dispatch, user=bob, host="h3")
    assert len(CALLS) == 3


def test_a_rejected_hold_does_not_act_and_an_old_window_frees_the_budget(
    inline_dispatch: InlineDispatcher, bob: User, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now())
    erin = approver("erin")
    ActionBudget.objects.create(action="approvaltests.contain", limit=1, window_seconds=600)
    start(budgeted_playbook(), inline_dispatch, user=bob, host="h0")
    held = start(budgeted_playbook(), inline_dispatch, user=bob, host="h1")
    decide(erin, ApprovalRequest.objects.get(run=held), "reject")
    inline_dispatch.drain()
    held.refresh_from_db()
    assert StepRun.objects.get(run=held, step_id="isolate").status == "rejected"
    assert held.status == "succeeded"
    assert [c["host"] for c in CALLS] == ["h0"]
    later(time_machine, minutes=11)
    start(budgeted_playbook(), inline_dispatch, user=bob, host="h2")
    assert [c["host"] for c in CALLS] == ["h0", "h2"]


def test_a_retry_does_not_use_the_budget_again(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    ActionBudget.objects.create(action="approvaltests.contain", limit=1, window_seconds=3600)
    start(budgeted_playbook(), inline_dispatch, user=bob, host="h0")
    assert BudgetUse.objects.count() == 1
    unit = StepRun.objects.get(step_id="isolate")
    from core.approvals.budgets import take_budget

    assert take_budget(action="approvaltests.contain", unit_id=unit.pk,
                       attempt_group=unit.attempt_group, inputs={}) is None  # fmt: skip
    assert BudgetUse.objects.count() == 1


def test_every_announcement_is_a_message_of_its_own(
    inline_dispatch: InlineDispatcher, time_machine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.approvals.notify as notify

    keys: list[str] = []
    monkeypatch.setattr(
        notify, "invoke", lambda spec, ctx, inputs: keys.append(ctx.idempotency_key) or {}
    )
    monkeypatch.setattr(
        notify, "resolve_connection", lambda **kw: type("C", (), {"credentials": {}})()
    )
    time_machine.move_to(timezone.now())
    approver("erin", IC)
    ladder = [{"approvers": [IC]}, {"approvers": [IC]}]
    defn = gated(timeout="10m", on_timeout="escalate", escalate_to=ladder,
                 notify=[{"email": ["ops@example.test"]}])  # fmt: skip
    start(defn, inline_dispatch)
    for _ in range(2):
        later(time_machine, minutes=11)
        sweep()
        inline_dispatch.drain()
    assert len(keys) == 3  # asked, escalated, escalated again
    assert len(set(keys)) == 3  # so each mail has its own Message-ID
