"""Deciding approval gates through the API: quorum, repeats, roles, groups, four-eyes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from audit.verify import verify_chains
from core.approval_models import ApprovalDecision, ApprovalRequest
from core.dispatch import InlineDispatcher
from core.models import StepRun
from playbooks.models import PlaybookVersion
from tests.conftest import client_for
from tests.core.approvals.helpers import CALLS, IC, approver, gated, start

pytestmark = pytest.mark.django_db(transaction=True)


def decide(user: User, approval_id: int, decision: str = "approve", comment: str = "ok") -> Any:
    return client_for(user).post(
        f"/api/v1/approvals/{approval_id}/decision/",
        {"decision": decision, "comment": comment},
        format="json",
    )


def test_two_of_three_approvers_let_the_destructive_step_act_once(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, frank, _grace = (approver(n, IC) for n in ("erin", "frank", "grace"))
    run = start(gated(min_approvals=2), inline_dispatch, user=bob)
    assert run.status == "waiting_approval"
    assert StepRun.objects.get(run=run, step_id="approve").status == "waiting_approval"

    inbox = client_for(erin).get("/api/v1/approvals/?status=pending").json()["results"]
    assert len(inbox) == 1
    (item,) = inbox
    assert item["run"] == run.pk
    assert item["message"] == "Contain aid-1?"
    assert item["guarded_inputs"] == {"isolate": {"host": "aid-1"}}
    assert (item["min_approvals"], item["approvals"], item["can_decide"]) == (2, 0, True)

    first = decide(erin, item["id"], comment="host beacons to C2")
    assert first.status_code == 200, first.json()
    assert (first.json()["recorded"], first.json()["status"], first.json()["approvals"]) == (
        True,
        "pending",
        1,
    )
    again = decide(erin, item["id"])
    assert again.status_code == 200
    assert again.json()["recorded"] is False  # a repeat changes nothing
    inline_dispatch.drain()
    assert CALLS == []  # one approval of two needed: nothing acts

    second = decide(frank, item["id"])
    assert (second.json()["recorded"], second.json()["status"]) == (True, "approved")
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert [c["host"] for c in CALLS] == ["aid-1"]
    late = decide(_grace, item["id"])
    assert (late.status_code, late.json()["recorded"], late.json()["status"]) == (
        200,
        False,
        "approved",
    )

    detail = client_for(bob).get(f"/api/v1/runs/{run.pk}/").json()
    assert [(a["id"], a["status"]) for a in detail["approvals"]] == [(item["id"], "approved")]
    decisions = ApprovalDecision.objects.filter(request_id=item["id"]).order_by("id")
    assert [(d.user.username, d.approve, d.channel) for d in decisions] == [
        ("erin", True, "api"),
        ("frank", True, "api"),
    ]
    events = list(AuditEvent.objects.filter(run_id=run.pk).order_by("seq"))
    kinds = [e.kind for e in events]
    assert kinds.count("approval.requested") == 1
    assert kinds.count("approval.decision") == 2
    assert "approval.approved" in kinds
    assert kinds.index("approval.approved") < kinds.index(
        "step.succeeded", kinds.index("approval.approved")
    )
    vote = next(e for e in events if e.kind == "approval.decision")
    assert vote.actor == "user:erin"
    assert vote.payload["comment"] == "host beacons to C2"
    assert vote.payload["channel"] == "api"
    assert vote.payload["bound_hash"] == item["bound_hash"]
    assert verify_chains().ok


def test_a_rejection_skips_what_the_gate_guards(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin = approver("erin", IC)
    run = start(gated(), inline_dispatch, user=bob)
    request = ApprovalRequest.objects.get(run=run)
    response = decide(erin, request.pk, "reject", comment="false positive")
    assert response.json()["status"] == "rejected"
    inline_dispatch.drain()
    run.refresh_from_db()
    units = dict(StepRun.objects.filter(run=run).values_list("step_id", "status"))
    assert units == {"enrich": "succeeded", "approve": "rejected", "isolate": "skipped",
                     "notify": "skipped"}  # fmt: skip
    assert run.status == "succeeded"
    assert CALLS == []
    detail = client_for(bob).get(f"/api/v1/runs/{run.pk}/").json()
    gate = next(s for s in detail["steps"] if s["id"] == "approve")
    assert gate["output"]["outcome"] == "rejected"


def test_four_eyes_refuses_whoever_started_the_run(inline_dispatch: InlineDispatcher) -> None:
    henry = approver("henry", IC, "analyst")
    run = start(gated(), inline_dispatch, user=henry)
    request = ApprovalRequest.objects.get(run=run)
    assert request.four_eyes is True  # on by default: the gate guards a destructive step
    response = decide(henry, request.pk)
    assert response.status_code == 403
    assert response.json()["error"] == (
        "four-eyes: you started this run, so another approver must decide its gates"
    )
    request.refresh_from_db()
    assert request.status == "pending"
    assert not ApprovalDecision.objects.exists()
    refused = AuditEvent.objects.get(run_id=run.pk, kind="approval.decision_refused")
    assert refused.actor == "user:henry"
    assert "four-eyes" in refused.payload["reason"]
    listed = client_for(henry).get(f"/api/v1/approvals/{request.pk}/").json()
    assert listed["can_decide"] is False
    assert listed["why_not"].startswith("four-eyes")


def test_four_eyes_refuses_whoever_published_the_version(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, frank = approver("erin", IC), approver("frank", IC)
    run = start(gated(), inline_dispatch, user=bob)
    PlaybookVersion.objects.filter(pk=run.version_id).update(published_by=erin)
    request = ApprovalRequest.objects.get(run=run)
    response = decide(erin, request.pk)
    assert response.status_code == 403
    assert "you published the playbook version" in response.json()["error"]
    assert decide(frank, request.pk).json()["status"] == "approved"


def test_four_eyes_can_be_turned_off_per_gate(inline_dispatch: InlineDispatcher) -> None:
    henry = approver("henry", IC, "analyst")
    run = start(gated(four_eyes=False), inline_dispatch, user=henry)
    request = ApprovalRequest.objects.get(run=run)
    assert decide(henry, request.pk).json()["status"] == "approved"


def test_only_approvers_of_the_gates_groups_may_decide(
    inline_dispatch: InlineDispatcher, bob: User, dave: User
) -> None:
    outsider = approver("ivan", "network-team")
    run = start(gated(), inline_dispatch, user=bob)
    request = ApprovalRequest.objects.get(run=run)
    response = decide(outsider, request.pk)
    assert response.status_code == 403
    assert response.json()["error"] == f"only members of {IC} may decide this request"
    # A viewer (or an analyst) is stopped by the role check before anything else.
    assert decide(dave, request.pk).status_code == 403
    assert decide(bob, request.pk).status_code == 403
    assert client_for(None).post(f"/api/v1/approvals/{request.pk}/decision/", {}).status_code in (
        401,
        403,
    )
    request.refresh_from_db()
    assert request.status == "pending"


def test_the_inbox_filters_by_status_and_by_my_groups(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, ivan = approver("erin", IC), approver("ivan", "network-team")
    first = start(gated(), inline_dispatch, user=bob)
    start(gated(), inline_dispatch, user=bob, host="aid-2")
    decide(erin, ApprovalRequest.objects.get(run=first).pk)
    pending = client_for(erin).get("/api/v1/approvals/?status=pending").json()
    assert pending["count"] == 1
    assert client_for(erin).get("/api/v1/approvals/?status=approved").json()["count"] == 1
    assert client_for(erin).get("/api/v1/approvals/?mine=true").json()["count"] == 2
    assert client_for(ivan).get("/api/v1/approvals/?mine=true").json()["count"] == 0


def test_a_bad_decision_is_refused_with_its_path(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin = approver("erin", IC)
    run = start(gated(), inline_dispatch, user=bob)
    request = ApprovalRequest.objects.get(run=run)
    response = decide(erin, request.pk, "maybe")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "decision"
    assert not ApprovalDecision.objects.exists()


def test_cancelling_a_waiting_run_withdraws_its_request(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin = approver("erin", IC)
    run = start(gated(), inline_dispatch, user=bob)
    response = client_for(bob).post(f"/api/v1/runs/{run.pk}/cancel/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled"
    request = ApprovalRequest.objects.get(run=run)
    assert request.status == "withdrawn"
    assert decide(erin, request.pk).json()["recorded"] is False
    assert CALLS == []


def test_many_requests_are_decided_in_one_call_each_on_its_own(
    inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin = approver("erin", IC)
    henry = approver("henry", IC, "analyst")
    mine = start(gated(), inline_dispatch, user=henry)
    others = [start(gated(), inline_dispatch, user=bob, host=f"h{i}") for i in range(3)]
    ids = [ApprovalRequest.objects.get(run=r).pk for r in [*others, mine]]
    response = client_for(henry).post(
        "/api/v1/approvals/bulk-decision/",
        {"approvals": [*ids, 999_999], "decision": "approve", "comment": "storm"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [results[str(i)] for i in ids[:3]] == ["recorded"] * 3
    assert results[str(ids[3])].startswith("four-eyes")
    assert results["999999"] == "no such request"
    inline_dispatch.drain()
    assert sorted(c["host"] for c in CALLS) == ["h0", "h1", "h2"]
    again = client_for(erin).post("/api/v1/approvals/bulk-decision/",
                                  {"approvals": ids, "decision": "approve"}, format="json")  # fmt: skip
    assert list(again.json()["results"].values()) == ["unchanged"] * 3 + ["recorded"]


def test_the_inbox_costs_the_same_queries_for_many_requests(
    inline_dispatch: InlineDispatcher, bob: User, django_assert_max_num_queries: Any
) -> None:
    erin = approver("erin", IC)
    client = client_for(erin)
    start(gated(), inline_dispatch, user=bob)
    client.get("/api/v1/approvals/")  # warm the per-user caches of roles and groups
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get("/api/v1/approvals/?status=pending").json()["count"] == 1
    for i in range(5):
        start(gated(), inline_dispatch, user=bob, host=f"h{i}")
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert client.get("/api/v1/approvals/?status=pending").json()["count"] == 6


def test_pending_requests_are_a_metric(inline_dispatch: InlineDispatcher, bob: User) -> None:
    from django.test import Client

    start(gated(), inline_dispatch, user=bob)
    text = Client().get("/metrics").content.decode()
    assert 'bulwark_approvals_pending{kind="gate"} 1.0' in text
    assert 'bulwark_runs{status="waiting_approval"} 1.0' in text
