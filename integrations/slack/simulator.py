"""A Slack Web API simulator: chat.postMessage with Slack's `ok: false` errors and 429."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_BOT_TOKEN = "xoxb-lab-0000-bulwark"  # noqa: S105 - the lab's own, not a secret
# The lab app's signing secret: Slack signs interaction requests with it.
LAB_SIGNING_SECRET = "lab-signing-secret-0000-bulwark"  # noqa: S105 - the lab's own
LAB_TEAM = "T0LAB"
CHANNELS = {"C0SOC": "soc", "C0IR": "incident-response", "C0CHANGE": "change"}


class SlackSimulator(Simulator):
    name = "slack"
    base_path = "/api"

    def __init__(self, *, token: str = LAB_BOT_TOKEN) -> None:
        self.token = token
        super().__init__()
        self.reset_state()

    def reset_state(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.archived: set[str] = set()
        # What apps posted to interaction response URLs (hooks.slack.com/actions/…).
        self.responses: list[dict[str, Any]] = []

    def routes(self) -> Iterable[Rule]:
        return [
            Rule("/api/chat.postMessage", methods=["POST"], endpoint="post_message"),
            Rule("/api/auth.test", methods=["POST"], endpoint="auth_test"),
            Rule("/actions/<path:hook>", methods=["POST"], endpoint="respond"),
        ]

    def respond(self, request: Request, hook: str) -> Response:
        """A response URL: the app replaces the original message or answers the clicker."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return Response("invalid_payload", status=400)
        with self.lock:
            self.responses.append({"hook": hook, **body})
        return Response("ok", status=200)

    def auth_test(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return json_response({"ok": False, "error": "invalid_auth"})
        return json_response({"ok": True, "team": "Bulwark Lab", "user": "bulwark", "team_id": "T0LAB",
                              "user_id": "U0BULWARK", "bot_id": "B0BULWARK"})  # fmt: skip

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        code = {429: "ratelimited", 401: "invalid_auth", 404: "unknown_method"}.get(
            status, "internal_error"
        )
        return json_response({"ok": False, "error": code}, status, headers)

    def post_message(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return json_response({"ok": False, "error": "invalid_auth"})  # HTTP 200, as Slack does
        body = request.get_json(silent=True) or {}
        channel, text = str(body.get("channel", "")), body.get("text")
        channel_id = (
            channel
            if channel in CHANNELS
            else next((cid for cid, name in CHANNELS.items() if channel.lstrip("#") == name), None)
        )
        if channel_id is None:
            return json_response({"ok": False, "error": "channel_not_found"})
        if channel_id in self.archived:
            return json_response({"ok": False, "error": "is_archived"})
        if not text and not body.get("blocks"):
            return json_response({"ok": False, "error": "no_text"})
        if text and len(text) > 40000:
            return json_response({"ok": False, "error": "msg_too_long"})
        with self.lock:
            ts = f"{time.time():.6f}"
            message = {"channel": channel_id, "ts": ts, "text": text, "blocks": body.get("blocks")}
            self.messages.append(message)
        return json_response({"ok": True, "channel": channel_id, "ts": ts,
                              "message": {"type": "message", "text": text, "ts": ts}})  # fmt: skip


def block_action(message: Mapping[str, Any], action_id: str, *, user_id: str,
                 username: str = "lab-user", team: str = LAB_TEAM,
                 response_url: str = "https://hooks.slack.com/actions/T0LAB/1/lab") -> dict[str, Any]:  # fmt: skip
    """The `block_actions` payload Slack sends when `user_id` clicks the button
    `action_id` of a posted message (vendor-apis.md §3.3); point `response_url` at the
    lab (`<lab>/slack/actions/…`) to see what the app answers there."""
    actions = next(b for b in message["blocks"] if b.get("type") == "actions")
    button = next(e for e in actions["elements"] if e.get("action_id") == action_id)
    now = f"{time.time():.6f}"
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": username, "team_id": team},
        "team": {"id": team, "domain": "bulwark-lab"},
        "channel": {"id": message["channel"], "name": CHANNELS.get(message["channel"], "")},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"]},
        "message": {"ts": message["ts"], "text": message.get("text"), "blocks": message["blocks"]},
        "api_app_id": "A0LAB",
        "trigger_id": f"{now}.lab",
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": actions.get("block_id"), "type": "button",
                     "value": button.get("value"), "action_ts": now, "text": button.get("text")}],
    }  # fmt: skip


def signed_request(payload: Mapping[str, Any], *, secret: str = LAB_SIGNING_SECRET,
                   timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """The body and headers of Slack's interaction request: `payload=<JSON>`, form
    encoded, signed with v0 over "v0:{timestamp}:{body}"."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
