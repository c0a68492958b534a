"""Recovering from a vendor outage against the lab: resume a failed run without repeating
what succeeded, and bulk-replay every run the outage failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core.dispatch import InlineDispatcher
from core.models import Run
from core.reconciler import sweep
from core.replay import request_replay
from core.runs import resume_run, start_run
from integrations.lab.connections import ensure_lab_connections
from tests.core.factories import published_version
from tests.integrations.conftest import run_to_the_end

pytestmark = pytest.mark.django_db(transaction=True)
ISSUE = "/rest/api/3/issue"
SLACK = "/api/chat.postMessage"

NOTIFY_THEN_TICKET: dict[str, Any] = {
    "name": "notify-then-ticket",
    "steps": [
        {"id": "notify", "action": "slack.post_message",
         "with": {"channel": "#soc", "text": "host contained"}},
        {"id": "ticket", "needs": ["notify"], "action": "jira.create_issue",
         "with": {"project": "SEC", "summary": "contained"}, "retry": {"attempts": 2, "backoff": "1s"}},
    ],
}  # fmt: skip


def test_resume_after_an_outage_completes_the_run_without_repeating_what_succeeded(
    lab: Any, inline_dispatch: InlineDispatcher, time_machine: Any, encryption_keys: list[str],
) -> None:  # fmt: skip
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    version = published_version(NOTIFY_THEN_TICKET)
    lab["jira"].inject(
        503, times=2, method="POST", path=ISSUE
    )  # the outage outlasts the step's two attempts
    run = start_run(playbook=version.playbook, actor="user:bob")
    run = run_to_the_end(run, inline_dispatch, time_machine)
    assert run.status == "failed"
    assert len(lab["slack"].requests("POST", SLACK)) == 1
    assert len(lab["jira"].requests("POST", ISSUE)) == 2

    run = resume_run(run=run, actor="user:bob")
    run = run_to_the_end(run, inline_dispatch, time_machine)

    assert run.status == "succeeded"
    assert len(lab["slack"].requests("POST", SLACK)) == 1  # not posted again
    assert len(lab["jira"].requests("POST", ISSUE)) == 3  # the one that now succeeds
    resumed = AuditEvent.objects.get(stream=f"run:{run.pk}", kind="run.resumed")
    assert resumed.actor == "user:bob"
    assert resumed.payload == {"steps": ["ticket"], "kept": ["notify"]}


TICKET_ONLY: dict[str, Any] = {
    "name": "ticket-only",
    "inputs": {"n": {"type": "integer", "required": True}},
    "steps": [{"id": "ticket", "action": "jira.create_issue", "retry": {"attempts": 1},
               "with": {"project": "SEC", "summary": "alert {{ inputs.n }}"}}],
}  # fmt: skip


def test_a_bulk_replay_of_100_failed_runs_completes_them_all(
    lab: Any, inline_dispatch: InlineDispatcher, encryption_keys: list[str], settings: Any,
) -> None:  # fmt: skip
    settings.BULWARK_REPLAY_RUNS_PER_SECOND = 1000.0
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    version = published_version(TICKET_ONLY)
    since = timezone.now() - timedelta(seconds=1)
    lab["jira"].inject(503, times=100, method="POST", path=ISSUE)  # Jira is down for all of them
    failed = []
    for n in range(100):
        failed.append(start_run(playbook=version.playbook, inputs={"n": n}, actor="alert:1"))
        inline_dispatch.drain()
    assert set(
        Run.objects.filter(pk__in=[r.pk for r in failed]).values_list("status", flat=True)
    ) == {"failed"}

    batch = request_replay(playbook=version.playbook, since=since,
                           until=timezone.now() + timedelta(seconds=1), actor="user:bob")  # fmt: skip
    assert batch.items.count() == 100
    for _ in range(5):
        sweep()
        inline_dispatch.drain()

    reruns = Run.objects.filter(rerun_of__in=[r.pk for r in failed])
    assert reruns.count() == 100
    assert set(reruns.values_list("status", flat=True)) == {"succeeded"}
    assert sorted(r.inputs["n"] for r in reruns) == list(range(100))
    assert len(lab["jira"].requests("POST", ISSUE)) == 200
    batch.refresh_from_db()
    assert batch.finished_at is not None
    # Asked again for the same window, nothing is replayed twice.
    again = request_replay(playbook=version.playbook, since=since,
                           until=timezone.now() + timedelta(seconds=1), actor="user:bob")  # fmt: skip
    assert again.items.count() == 0
