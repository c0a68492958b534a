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
