"""awx.launch_job against the lab's AWX simulator."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.awx import actions
from integrations.awx.simulator import LAB_TOKEN
from integrations.context import ActionContext, PollAgain
from integrations.errors import PermanentError, TransientError
from tests.integrations.conftest import lab_connection, make_ctx, poll_until_done

pytestmark = pytest.mark.django_db


@pytest.fixture
def awx(lab: Any) -> Any:
    sim = lab["awx"]
    sim.stage_seconds = 0.03
    return sim


def ctx_for(lab: Any, token: str = LAB_TOKEN) -> ActionContext:
    return make_ctx(lab_connection(lab, "awx", {"token": token}))


def patch(ctx: ActionContext, **extra: Any) -> Any:
    return actions.launch_job(ctx, job_template=42, extra_vars={"kb": "KB500"}, limit="web01",
                              poll_interval=0.05, **extra)  # fmt: skip


def test_launch_checks_the_template_posts_the_fields_and_waits_for_the_job(
    lab: Any, awx: Any
) -> None:
    awx.stage_seconds = 0.2  # the checks after the launch cannot find the job done already
    output, polls = poll_until_done(patch, ctx_for(lab))
    assert (output["status"], output["failed"], output["limit"]) == ("successful", False, "web01")
    assert polls >= 2  # once right after the launch, then while the job ran
    (check,) = awx.requests("GET", "/api/v2/job_templates/42/launch/")
    (launch,) = awx.requests("POST", "/api/v2/job_templates/42/launch/")
    assert check.at < launch.at
    assert launch.json == {"extra_vars": {"kb": "KB500"}, "limit": "web01"}
    assert launch.headers["authorization"] == f"Bearer {LAB_TOKEN}"


def test_the_job_id_is_kept_at_once_so_later_attempts_only_poll(lab: Any, awx: Any) -> None:
    ctx = ctx_for(lab)
    with pytest.raises(PollAgain) as launched:
        patch(ctx)
    assert launched.value.progress["job"] == 101
    ctx.progress = launched.value.progress
    ctx.attempt = 2
    poll_until_done(patch, ctx)
    assert len(awx.requests("POST", "/api/v2/job_templates/42/launch/")) == 1


def test_fields_the_template_would_ignore_fail_the_step_before_launching(
    lab: Any, awx: Any
) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.launch_job(ctx_for(lab), job_template=9, limit="web01")
    assert "ask_limit_on_launch" in failed.value.message
    assert awx.requests("POST") == []


def test_ignored_fields_in_the_answer_cancel_the_job_and_fail(lab: Any, awx: Any) -> None:
    awx.inject(201, {"job": 555, "id": 555, "status": "pending", "ignored_fields": {"limit": "web01"}},
               method="POST", path="/api/v2/job_templates/42/launch/")  # fmt: skip
    with pytest.raises(PermanentError) as failed:
        patch(ctx_for(lab))
    assert "ignored" in failed.value.message
    assert awx.requests("POST", "/api/v2/jobs/555/cancel/")


def test_a_failed_job_fails_the_step(lab: Any, awx: Any) -> None:
    awx.fail_next = True
    with pytest.raises(PermanentError) as failed:
        poll_until_done(patch, ctx_for(lab))
    assert failed.value.kind == "vendor_action_failed"


def test_with_wait_false_the_step_ends_at_the_launch(lab: Any, awx: Any) -> None:
    output = patch(ctx_for(lab), wait=False)
    assert (output["id"], output["status"]) == (101, "pending")


def test_an_unknown_template_and_a_bad_token_fail_permanently(lab: Any, awx: Any) -> None:
    with pytest.raises(PermanentError) as missing:
        actions.launch_job(ctx_for(lab), job_template=999)
    assert missing.value.kind == "not_found"
    with pytest.raises(PermanentError) as denied:
        patch(ctx_for(lab, "wrong-token-777"))
    assert "401" in denied.value.message


def test_a_server_error_is_transient(lab: Any, awx: Any) -> None:
    awx.inject(503)
    with pytest.raises(TransientError):
        patch(ctx_for(lab))
