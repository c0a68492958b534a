"""Slack actions: post a message to a channel."""

from __future__ import annotations

from typing import Any

from integrations.context import ActionContext
from integrations.probes import prober
from integrations.registry import action
from integrations.slack.client import Slack


@action(
    "slack.post_message",
    plan='post to {channel}: "{text}"',
    side_effect="write",
    connection="slack",
    connection_required=True,
    output="`channel` (its id) and `ts`, the message's timestamp for replies and edits",
)
def post_message(ctx: ActionContext, *, channel: str, text: str,
                 blocks: list[dict[str, Any]] | None = None,
                 thread_ts: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Post `text` (and optional Block Kit `blocks`) to `channel` (an id such as C0123, or a
    name); returns the message's channel and `ts`, which later edits and replies need."""
    body: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
    if blocks:
        body["blocks"] = blocks
    if thread_ts:
        body["thread_ts"] = thread_ts
    with Slack(ctx) as slack:
        answer = slack.method("chat.postMessage", body)
    return {"channel": answer.get("channel"), "ts": answer.get("ts"), "ok": True}


@prober("slack")
def check_connection(ctx: ActionContext) -> str:
    """auth.test says which workspace and bot the token belongs to."""
    with Slack(ctx) as slack:
        answer = slack.method("auth.test", {})
    return f"authenticated as {answer.get('user')} in {answer.get('team')}"
