"""SentinelOne network actions against the lab's simulator."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.context import ActionContext
from integrations.errors import PermanentError, TransientError
from integrations.sentinelone import actions
from integrations.sentinelone.simulator import LAB_API_TOKEN
from tests.integrations.conftest import lab_connection, make_ctx, poll_until_done

pytestmark = pytest.mark.django_db
AGENT = "1600000000000000001"


@pytest.fixture
def s1(lab: Any) -> Any:
    sim = lab["sentinelone"]
    sim.transition_seconds = 0.05
    return sim


def ctx_for(lab: Any, token: str = LAB_API_TOKEN) -> ActionContext:
    return make_ctx(lab_connection(lab, "sentinelone", {"api_token": token}))


def disconnect(ctx: ActionContext) -> Any:
    return actions.disconnect_agent(ctx, agent_id=AGENT, poll_interval=0.05)


def test_disconnect_sends_an_id_filter_with_apitoken_and_waits_for_network_status(
    lab: Any, s1: Any
) -> None:
    s1.transition_seconds = 0.5  # the check right after the request cannot find it done already
    output, polls = poll_until_done(disconnect, ctx_for(lab))
    assert (output["networkStatus"], output["computerName"], output["requested"]) == (
        "disconnected",
        "WS-FIN-042",
        True,
    )
    assert polls >= 1
    (post,) = s1.requests("POST", "/web/api/v2.1/agents/actions/disconnect")
    assert post.json == {"filter": {"ids": [AGENT]}, "data": {}}
    assert post.headers["authorization"] == f"ApiToken {LAB_API_TOKEN}"


def test_a_disconnected_agent_is_not_asked_again_and_reconnect_works(lab: Any, s1: Any) -> None:
    poll_until_done(disconnect, ctx_for(lab))
    assert disconnect(ctx_for(lab))["requested"] is False
    assert len(s1.requests("POST", "/web/api/v2.1/agents/actions/disconnect")) == 1
    output, _ = poll_until_done(
        lambda c: actions.connect_agent(c, agent_id=AGENT, poll_interval=0.05), ctx_for(lab)
    )
    assert output["networkStatus"] == "connected"


def test_an_unknown_agent_is_not_found_before_any_action(lab: Any, s1: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.disconnect_agent(ctx_for(lab), agent_id="999")
    assert failed.value.kind == "not_found"
    assert s1.requests("POST") == []


def test_an_empty_agent_id_is_refused_rather_than_sent_as_an_empty_filter(
    lab: Any, s1: Any
) -> None:
    s1.agents[""] = {**s1.agents[AGENT], "id": ""}  # even if a lookup matched
    with pytest.raises(PermanentError) as failed:
        actions.disconnect_agent(ctx_for(lab), agent_id="")
    assert failed.value.kind in ("validation", "not_found")
    assert s1.requests("POST") == []


def test_a_bad_token_fails_permanently_with_s1s_error_title(lab: Any, s1: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        disconnect(ctx_for(lab, "wrong-token-0001"))
    assert "401" in failed.value.message
    assert "wrong-token-0001" not in failed.value.message


def test_throttling_is_transient(lab: Any, s1: Any) -> None:
    s1.rate_limited(4)
    with pytest.raises(TransientError) as failed:
        disconnect(ctx_for(lab))
    assert failed.value.retry_after == 4
