"""servicenow.create_incident against the lab's simulator."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.servicenow import actions
from integrations.servicenow.simulator import LAB_PASSWORD, LAB_USERNAME
from tests.integrations.conftest import lab_connection, make_ctx

pytestmark = pytest.mark.django_db


def ctx_for(lab: Any, password: str = LAB_PASSWORD) -> Any:
    return make_ctx(
        lab_connection(lab, "servicenow", {"username": LAB_USERNAME, "password": password})
    )


def test_create_incident_queries_its_correlation_id_then_posts_the_fields(lab: Any) -> None:
    ctx = ctx_for(lab)
    output = actions.create_incident(ctx, short_description="Host WS-FIN-042 contained",
                                     description="Run 7", urgency="1", impact="1")  # fmt: skip
    assert output["number"] == "INC0010001"
    assert output["created"] is True
    correlation = actions.correlation_id(ctx)
    (query,) = lab["servicenow"].requests("GET", "/api/now/table/incident")
    assert query.query["sysparm_query"] == f"correlation_id={correlation}"
    assert query.query["sysparm_limit"] == "1"
    (post,) = lab["servicenow"].requests("POST", "/api/now/table/incident")
    basic = base64.b64encode(f"{LAB_USERNAME}:{LAB_PASSWORD}".encode()).decode()
    assert post.headers["authorization"] == f"Basic {basic}"
    assert post.headers["accept"] == "application/json"
    assert post.json == {"short_description": "Host WS-FIN-042 contained", "description": "Run 7",
                         "urgency": "1", "impact": "1", "category": "security", "correlation_id": correlation}  # fmt: skip


def test_a_retried_create_finds_the_incident_instead_of_opening_another(lab: Any) -> None:
    first = actions.create_incident(ctx_for(lab), short_description="s")
    again = actions.create_incident(ctx_for(lab), short_description="s")
    assert again == {**first, "created": False}
    assert len(lab["servicenow"].incidents) == 1


def test_bad_credentials_fail_permanently(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.create_incident(ctx_for(lab, "wrong-password-9"), short_description="s")
    assert "401" in failed.value.message
    assert "wrong-password-9" not in failed.value.message


def test_a_business_rule_rejection_names_servicenows_message(lab: Any) -> None:
    lab["servicenow"].inject(403, {"error": {"message": "Operation against file 'incident' was aborted by Business Rule", "detail": "x"},
                                   "status": "failure"}, method="POST")  # fmt: skip
    with pytest.raises(PermanentError) as failed:
        actions.create_incident(ctx_for(lab), short_description="s")
    assert failed.value.kind == "forbidden"
    assert "Business Rule" in failed.value.message


def test_a_429_waits_as_servicenow_says(lab: Any) -> None:
    lab["servicenow"].rate_limited(9)
    with pytest.raises(TransientError) as failed:
        actions.create_incident(ctx_for(lab), short_description="s")
    assert failed.value.retry_after == 9
