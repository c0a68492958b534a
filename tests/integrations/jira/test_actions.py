"""jira.create_issue and jira.add_comment against the lab's Jira simulator."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.jira import actions
from integrations.jira.simulator import LAB_API_TOKEN, LAB_EMAIL
from tests.integrations.conftest import lab_connection, make_ctx

# Connection health (circuit, rate limit) lives in the database.
pytestmark = pytest.mark.django_db

CREDENTIALS = {"email": LAB_EMAIL, "api_token": LAB_API_TOKEN}


def ctx_for(lab: Any, credentials: dict[str, Any] = CREDENTIALS) -> Any:
    return make_ctx(lab_connection(lab, "jira", credentials))


def test_create_issue_searches_its_label_then_creates_with_adf_and_basic_auth(lab: Any) -> None:
    ctx = ctx_for(lab)
    output = actions.create_issue(ctx, project="SEC", summary="Compromised host WS-FIN-042",
                                  description="Contained.\nEvidence attached.", priority="High")  # fmt: skip
    assert output["key"] == "SEC-1"
    assert output["created"] is True
    label = actions.run_label(ctx)
    (search,) = lab["jira"].requests("GET", "/rest/api/3/search/jql")
    assert search.query["jql"] == f'labels = "{label}"'
    (create,) = lab["jira"].requests("POST", "/rest/api/3/issue")
    basic = base64.b64encode(f"{LAB_EMAIL}:{LAB_API_TOKEN}".encode()).decode()
    assert create.headers["authorization"] == f"Basic {basic}"
    assert create.json == {"fields": {
        "project": {"key": "SEC"}, "issuetype": {"name": "Task"},
        "summary": "Compromised host WS-FIN-042", "labels": ["bulwark", label],
        "description": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Contained."}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "Evidence attached."}]}]},
        "priority": {"name": "High"},
    }}  # fmt: skip


def test_a_retried_create_finds_the_issue_instead_of_opening_another(lab: Any) -> None:
    first = actions.create_issue(ctx_for(lab), project="SEC", summary="s")
    again = actions.create_issue(ctx_for(lab), project="SEC", summary="s")
    assert again == {**first, "created": False}
    assert len(lab["jira"].requests("POST", "/rest/api/3/issue")) == 1


def test_a_validation_error_names_the_field(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.create_issue(ctx_for(lab), project="NOPE", summary="s")
    assert failed.value.kind == "validation"
    assert "project" in failed.value.message


def test_bad_credentials_fail_permanently(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.create_issue(ctx_for(lab, {"email": LAB_EMAIL, "api_token": "wrong-token-1"}),
                             project="SEC", summary="s")  # fmt: skip
    assert "401" in failed.value.message
    assert "wrong-token-1" not in failed.value.message


def test_a_429_is_transient_with_jiras_retry_after(lab: Any) -> None:
    lab["jira"].rate_limited(12)
    with pytest.raises(TransientError) as failed:
        actions.create_issue(ctx_for(lab), project="SEC", summary="s")
    assert failed.value.retry_after == 12


def test_add_comment_posts_an_adf_body(lab: Any) -> None:
    issue = actions.create_issue(ctx_for(lab), project="SEC", summary="s")
    output = actions.add_comment(ctx_for(lab), issue=issue["key"], text="Host released.")
    assert output["id"]
    assert output["issue"] == "SEC-1"
    (call,) = lab["jira"].requests("POST", "/rest/api/3/issue/SEC-1/comment")
    assert call.json == {"body": {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "Host released."}]}]}}  # fmt: skip


def test_a_comment_on_a_missing_issue_is_not_found(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.add_comment(ctx_for(lab), issue="SEC-999", text="x")
    assert failed.value.kind == "not_found"
