"""Asynchronous actions in the database shell: parked between polls, no thread held."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.verify import verify_chains
from core.dispatch import InlineDispatcher
from core.models import Attempt, Run, StepRun
from core.reconciler import sweep
from core.runs import start_run
from integrations.context import ActionContext
from integrations.registry import action
from tests.core.factories import definition, published_version

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cr3t-token-value"


@action("testing.vendor_job", side_effect="read")
def vendor_job(ctx: ActionContext, *, polls: int = 2) -> dict[str, Any]:
    """Starts a job on its first call, then polls it until it has been polled `polls` times."""
    progress = ctx.progress or {"job": f"job-{ctx.idempotency_key[-6:]}", "polled": 0}
    if progress["polled"] < polls:
        raise ctx.poll_again(5, {**progress, "polled": progress["polled"] + 1}, "job running")
    return {"job": progress["job"], "polled": progress["polled"], "attempt": ctx.attempt}


def start(defn: dict) -> Run:
    version = published_version(defn)
    return start_run(playbook=version.playbook, inputs={}, actor="user:bob")


def poll_step(step_id: str = "job", **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "action": "testing.vendor_job", "with": {"polls": 2}, **extra}


def test_a_polling_step_parks_its_unit_and_resumes_with_its_progress(
    inline_dispatch: InlineDispatcher, time_machine
) -> None:
    run = start(definition(poll_step(retry={"attempts": 1})))
    inline_dispatch.drain()
    unit = StepRun.objects.get(run=run, step_id="job")
    assert unit.status == "waiting"
    assert unit.progress["polled"] == 1
    assert unit.lease_owner == ""
    assert unit.lease_expires_at is None
    assert inline_dispatch.pending == type(inline_dispatch.pending)()
    assert sweep().retries_fired == 0  # not due yet
    for _ in range(2):
        time_machine.move_to(timezone.now() + timedelta(seconds=6))
        assert sweep().retries_fired == 1
        inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    unit.refresh_from_db()
    assert unit.output == {"job": unit.progress["job"], "polled": 2, "attempt": 3}
    outcomes = list(Attempt.objects.filter(unit=unit).values_list("outcome", flat=True))
    assert outcomes == ["waiting", "waiting", "succeeded"]
    # One idempotency key across the polls: the same logical attempt.
    assert (
        len(set(Attempt.objects.filter(unit=unit).values_list("idempotency_key", flat=True))) == 1
    )
    kinds = list(AuditEvent.objects.filter(run_id=run.pk).values_list("kind", flat=True))
    assert kinds.count("attempt.waiting") == 2
    assert kinds.count("step.polling") == 2
    waited = AuditEvent.objects.filter(run_id=run.pk, kind="attempt.waiting").first()
    assert waited is not None
    assert waited.payload["progress"]["job"] == unit.progress["job"]
    assert verify_chains().ok


def test_a_wide_fan_out_of_polling_items_parks_every_item(
    inline_dispatch: InlineDispatcher, time_machine
) -> None:
    step = poll_step(for_each="{{ [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }}")
    run = start(definition(step))
    inline_dispatch.drain()  # ten items: drain wake-ups, not a message each
    items = StepRun.objects.filter(run=run, item_index__gte=0)
    assert sorted(items.values_list("status", flat=True)) == ["waiting"] * 10
    for _ in range(2):
        time_machine.move_to(timezone.now() + timedelta(seconds=6))
        assert sweep().retries_fired == 10
        inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_cancelling_a_run_ends_a_waiting_step(inline_dispatch: InlineDispatcher) -> None:
    from core.runs import cancel_run

    run = start(definition(poll_step()))
    inline_dispatch.drain()
    cancel_run(run=run, actor="user:bob")
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert StepRun.objects.get(run=run, step_id="job").status == "cancelled"


@action("testing.leaky_job", side_effect="read", connection="http")
def leaky_job(ctx: ActionContext) -> dict[str, Any]:
    """Keeps a credential in its progress and note, which must be redacted."""
    token = ctx.connection.credentials["token"] if ctx.connection else ""
    raise ctx.poll_again(5, {"auth": f"Bearer {token}"}, f"waiting with {token}")


def test_progress_kept_between_polls_is_redacted_of_secrets(
    inline_dispatch: InlineDispatcher,
) -> None:
    from integrations.connections import create_connection

    create_connection(integration="http", name="api", base_url="https://api.example.com",
                      credentials={"token": SECRET}, actor="user:alice")  # fmt: skip
    run = start(definition({"id": "job", "action": "testing.leaky_job", "connection": "api"}))
    inline_dispatch.drain()
    unit = StepRun.objects.get(run=run, step_id="job")
    assert unit.status == "waiting"
    assert unit.progress == {"auth": "Bearer [redacted]"}
    for event in AuditEvent.objects.filter(run_id=run.pk):
        assert SECRET not in str(event.payload)
