"""slack.post_message against the lab's Slack simulator."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.slack import actions
from integrations.slack.simulator import LAB_BOT_TOKEN
from tests.integrations.conftest import lab_connection, make_ctx

# Connection health (circuit, rate limit) lives in the database.
pytestmark = pytest.mark.django_db


def ctx_for(lab: Any, token: str = LAB_BOT_TOKEN) -> Any:
    return make_ctx(lab_connection(lab, "slack", {"token": token}))


def test_post_message_sends_the_channel_text_and_bearer_token(lab: Any) -> None:
    output = actions.post_message(ctx_for(lab), channel="C0SOC", text="host contained")
    assert output["channel"] == "C0SOC"
    assert output["ts"]
    (call,) = lab["slack"].requests("POST", "/api/chat.postMessage")
    assert call.headers["authorization"] == f"Bearer {LAB_BOT_TOKEN}"
    assert call.headers["content-type"] == "application/json; charset=utf-8"
    assert call.json == {"channel": "C0SOC", "text": "host contained", "unfurl_links": False}


def test_blocks_and_a_thread_are_passed_on(lab: Any) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*contained*"}}]
    actions.post_message(ctx_for(lab), channel="#soc", text="x", blocks=blocks, thread_ts="1.2")
    (call,) = lab["slack"].requests("POST", "/api/chat.postMessage")
    assert call.json["blocks"] == blocks
    assert call.json["thread_ts"] == "1.2"


@pytest.mark.parametrize("error", ["channel_not_found", "is_archived", "invalid_auth"])
def test_an_ok_false_answer_with_http_200_fails_permanently_with_slacks_error(
    lab: Any, error: str
) -> None:
    channel, token = "C0SOC", LAB_BOT_TOKEN
    if error == "channel_not_found":
        channel = "C0NOPE"
    elif error == "is_archived":
        lab["slack"].archived.add("C0SOC")
    else:
        token = "xoxb-wrong-token"
    with pytest.raises(PermanentError) as failed:
        actions.post_message(ctx_for(lab, token), channel=channel, text="x")
    assert failed.value.kind == "slack_error"
    assert failed.value.details["error"] == error
    assert "xoxb-wrong-token" not in failed.value.message


def test_a_429_with_retry_after_is_transient_and_names_the_wait(lab: Any) -> None:
    lab["slack"].rate_limited(7)
    with pytest.raises(TransientError) as failed:
        actions.post_message(ctx_for(lab), channel="C0SOC", text="x")
    assert failed.value.retry_after == 7


def test_a_server_error_is_transient(lab: Any) -> None:
    lab["slack"].inject(500)
    with pytest.raises(TransientError):
        actions.post_message(ctx_for(lab), channel="C0SOC", text="x")
