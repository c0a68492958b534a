"""Approvals are checked again when the destructive step's turn comes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from audit.models import AuditEvent
from core.approval_models import ApprovalRequest
from core.dispatch import InlineDispatcher
from core.models import StepRun
from tests.conftest import client_for
from tests.core.approvals.helpers import CALLS, IC, approver, gated, start

pytestmark = pytest.mark.django_db(transaction=True)


def decide(user: User, request: ApprovalRequest) -> Any:
    return client_for(user).post(f"/api/v1/approvals/{request.pk}/decision/",
                                 {"decision": "approve"}, format="json")  # fmt: skip


def test_an_approver_who_lost_the_right_before_the_step_ran_no_longer_counts(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, frank = approver("erin", IC), approver("frank", IC)
    run = start(gated(), inline_dispatch, user=bob)
    gate = ApprovalRequest.objects.get(run=run)
    assert decide(erin, gate).json()["status"] == "approved"
    # Between the decision and the step's turn, erin leaves the incident commanders.
    User.objects.get(pk=erin.pk).groups.remove(Group.objects.get(name=IC))
    inline_dispatch.drain()
    assert CALLS == []
    unit = StepRun.objects.get(run=run, step_id="isolate")
    assert unit.status == "waiting_approval"
    again = ApprovalRequest.objects.get(run=run, step_id="isolate")
    assert (again.kind, again.approvers, again.status) == ("reauthorize", [IC], "pending")
    assert "erin may no longer approve it" in again.message
    event = AuditEvent.objects.get(run_id=run.pk, kind="approval.reauthorization_needed")
    assert event.payload["no_longer_valid"] == ["erin"]
    assert decide(frank, again).json()["status"] == "approved"
    inline_dispatch.drain()
    assert [c["host"] for c in CALLS] == ["aid-1"]
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_deactivated_approver_no_longer_counts_and_a_valid_one_still_does(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, frank = approver("erin", IC), approver("frank", IC)
    run = start(gated(min_approvals=2), inline_dispatch, user=bob)
    gate = ApprovalRequest.objects.get(run=run)
    decide(erin, gate)
    decide(frank, gate)
    User.objects.filter(pk=frank.pk).update(is_active=False)
    inline_dispatch.drain()
    assert CALLS == []
    held = ApprovalRequest.objects.get(run=run, step_id="isolate")
    assert held.min_approvals == 2
    assert "frank may no longer approve it" in held.message


def test_approvals_that_still_hold_let_the_step_act_at_once(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin = approver("erin", IC)
    run = start(gated(), inline_dispatch, user=bob)
    decide(erin, ApprovalRequest.objects.get(run=run))
    inline_dispatch.drain()
    assert [c["host"] for c in CALLS] == ["aid-1"]
    assert ApprovalRequest.objects.filter(run=run).count() == 1


def test_approvals_made_on_an_earlier_rung_of_the_ladder_still_count(
    inline_dispatch: InlineDispatcher, bob: User, time_machine: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from core.reconciler import sweep

    time_machine.move_to(timezone.now())
    erin, lena = approver("erin", IC), approver("lena", "soc-leads")
    defn = gated(min_approvals=2, timeout="10m", on_timeout="escalate",
                 escalate_to=[{"approvers": ["soc-leads"]}])  # fmt: skip
    run = start(defn, inline_dispatch, user=bob)
    gate = ApprovalRequest.objects.get(run=run)
    decide(erin, gate)
    time_machine.move_to(timezone.now() + timedelta(minutes=11))
    sweep()
    assert decide(lena, gate).json()["status"] == "approved"
    inline_dispatch.drain()
    assert [c["host"] for c in CALLS] == ["aid-1"]  # erin's approval of rung 0 still holds


def test_a_gate_approved_by_its_timeout_is_not_checked_again(
    inline_dispatch: InlineDispatcher, bob: User, time_machine: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from core.reconciler import sweep

    time_machine.move_to(timezone.now())
    erin = approver("erin", IC)
    run = start(
        gated(min_approvals=2, timeout="10m", on_timeout="approve"), inline_dispatch, user=bob
    )
    decide(erin, ApprovalRequest.objects.get(run=run))
    time_machine.move_to(timezone.now() + timedelta(minutes=11))
    sweep()
    inline_dispatch.drain()
    assert [c["host"] for c in CALLS] == ["aid-1"]  # the playbook said: approve on timeout


def test_a_vote_from_a_group_the_request_no_longer_asks_is_refused_by_the_engine(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    from core.approvals.decide import unit_key
    from core.engine.advance import EngineError
    from core.engine.events import Vote
    from core.transitions import apply_event

    run = start(gated(), inline_dispatch, user=bob)
    gate = ApprovalRequest.objects.get(run=run)
    vote = Vote(unit_key(gate), gate.number, "user:x", True, groups=("soc-leads",))
    with pytest.raises(EngineError, match="not in the groups request 1 now asks"):
        apply_event(run.pk, vote, actor="user:x")


def test_a_budget_override_is_not_taken_for_the_approval_of_the_action(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    from core.approval_models import ActionBudget

    ActionBudget.objects.create(action="approvaltests.contain", limit=0, approvers=["budget-ok"])
    erin, carl, frank = approver("erin", IC), approver("carl", "budget-ok"), approver("frank", IC)
    run = start(gated(), inline_dispatch, user=bob)
    decide(erin, ApprovalRequest.objects.get(run=run, step_id="approve"))
    inline_dispatch.drain()
    held = ApprovalRequest.objects.get(run=run, step_id="isolate")
    assert held.kind == "budget"
    User.objects.get(pk=erin.pk).groups.remove(Group.objects.get(name=IC))  # while it waits
    assert decide(carl, held).json()["status"] == "approved"
    inline_dispatch.drain()
    assert CALLS == []  # the budget's approver allowed the excess, not the action itself
    again = ApprovalRequest.objects.get(run=run, kind="reauthorize")
    assert decide(frank, again).json()["status"] == "approved"
    inline_dispatch.drain()
    assert [c["host"] for c in CALLS] == ["aid-1"]


def test_a_vote_the_engine_refuses_under_the_run_lock_is_a_refusal_and_audited(
    inline_dispatch: InlineDispatcher, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.approvals.decide as decide_module

    outsider = approver("ivan", "network-team")
    run = start(gated(), inline_dispatch, user=bob)
    gate = ApprovalRequest.objects.get(run=run)
    # As if the request escalated between the shell's check and the vote's transition.
    monkeypatch.setattr(decide_module, "refusal", lambda request, user: None)
    response = decide(outsider, gate)
    assert response.status_code == 403
    assert "not in the groups request 1 now asks" in response.json()["error"]
    event = AuditEvent.objects.get(run_id=run.pk, kind="approval.decision_refused")
    assert event.actor == "user:ivan"
