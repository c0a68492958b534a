"""PagerDuty Events v2 against the lab's simulator."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.pagerduty import actions
from integrations.pagerduty.simulator import LAB_ROUTING_KEY
from tests.integrations.conftest import lab_connection, make_ctx

pytestmark = pytest.mark.django_db


def ctx_for(lab: Any, key: str = LAB_ROUTING_KEY) -> Any:
    return make_ctx(lab_connection(lab, "pagerduty", {"routing_key": key}))


def test_trigger_puts_the_routing_key_in_the_body_with_a_stable_dedup_key(lab: Any) -> None:
    ctx = ctx_for(lab)
    output = actions.trigger(ctx, summary="Host WS-FIN-042 contained", source="WS-FIN-042",
                             severity="critical", custom_details={"run": 7})  # fmt: skip
    assert output["status"] == "success"
    assert output["dedup_key"] == actions.default_dedup_key(ctx)
    (call,) = lab["pagerduty"].requests("POST", "/v2/enqueue")
    body = call.json
    assert "authorization" not in call.headers
    assert body["routing_key"] == LAB_ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == output["dedup_key"]
    assert body["client"] == "Bulwark"
    assert {k: body["payload"][k] for k in ("summary", "source", "severity", "custom_details")} == {
        "summary": "Host WS-FIN-042 contained", "source": "WS-FIN-042", "severity": "critical",
        "custom_details": {"run": 7}}  # fmt: skip
    assert body["payload"]["timestamp"]


def test_a_retried_trigger_collapses_into_one_alert_and_resolve_closes_it(lab: Any) -> None:
    first = actions.trigger(ctx_for(lab), summary="s", source="h")
    actions.trigger(ctx_for(lab), summary="s", source="h")
    (alert,) = lab["pagerduty"].alerts.values()
    assert alert["triggers"] == 2
    actions.resolve(ctx_for(lab), dedup_key=first["dedup_key"])
    assert alert["status"] == "resolved"
    assert lab["pagerduty"].requests()[-1].json == {
        "routing_key": LAB_ROUTING_KEY, "event_action": "resolve", "dedup_key": first["dedup_key"]}  # fmt: skip


def test_an_invalid_event_fails_permanently_with_pagerdutys_errors(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.trigger(ctx_for(lab, "x" * 32), summary="s", source="h")
    assert "routing_key" in failed.value.message
    assert "x" * 32 not in failed.value.message


def test_throttling_and_server_errors_are_transient(lab: Any) -> None:
    lab["pagerduty"].rate_limited(5)
    with pytest.raises(TransientError) as throttled:
        actions.trigger(ctx_for(lab), summary="s", source="h")
    assert throttled.value.retry_after == 5
    lab["pagerduty"].inject(502)
    with pytest.raises(TransientError):
        actions.trigger(ctx_for(lab), summary="s", source="h")
