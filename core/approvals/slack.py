"""Slack's interactivity endpoint: an Approve or Reject button click (vendor-apis.md §3.3).

Slack POSTs `payload=<JSON>` form-encoded, signed with the app's signing secret (`v0`:
HMAC-SHA256 over "v0:{timestamp}:{raw body}", compared in constant time, refused outside
five minutes). The clicking Slack user must be mapped to a Bulwark user
(accounts.ChatIdentity) of the workspace the verifying connection names (its `team_id`
option), and that user's roles, groups and four-eyes apply as anywhere else. The
button's value is a signed decision link token (core.approvals.links), so a click can
only decide the request it was posted for, while it is current.

Slack wants an answer within three seconds; the decision is one transaction. The clicker
is told what happened through the interaction's response_url (ephemerally), and once the
request is decided the message's buttons are replaced by the outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import ChatIdentity
from core.approval_models import ApprovalDecision, ApprovalRequest, SeenInteraction
from core.approvals.decide import DecisionRefused
from core.approvals.links import LinkRefused, use_link
from core.approvals.notify import summary
from integrations.models import Connection

log = logging.getLogger(__name__)
TOLERANCE_SECONDS = 300
MAX_BODY = 64 * 1024


def _slack_connections() -> list[tuple[bytes, Connection]]:
    found = []
    for connection in Connection.objects.filter(integration="slack"):
        secret = connection.credentials.get("signing_secret")
        if secret:
            found.append((str(secret).encode(), connection))
    return found


def verified_connection(
    body: bytes, timestamp: str, signature: str, *, now: float | None = None
) -> tuple[Connection | None, str | None]:
    """The Slack connection whose signing secret signed this fresh request, or why none."""
    try:
        sent = int(timestamp)
    except ValueError:
        return None, "missing or malformed X-Slack-Request-Timestamp"
    if abs((now if now is not None else time.time()) - sent) > TOLERANCE_SECONDS:
        return None, "the request timestamp is more than 5 minutes away"
    base = b"v0:" + timestamp.encode() + b":" + body
    for secret, connection in _slack_connections():
        expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature):
            return connection, None
    return None, "the signature does not match"


def _response_url_allowed(url: str) -> bool:
    """Slack's own hooks host, or the host of a configured Slack connection (the lab):
    the URL comes from a signed request, yet it is still not sent just anywhere."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    if parsed.scheme == "https" and parsed.host == "hooks.slack.com":
        return True
    hosts = {
        (httpx.URL(c.base_url).scheme, httpx.URL(c.base_url).host, httpx.URL(c.base_url).port)
        for c in Connection.objects.filter(integration="slack")
    }
    return (parsed.scheme, parsed.host, parsed.port) in hosts


def _respond(url: str, body: dict[str, Any]) -> None:
    """Best effort: the decision is recorded whatever happens to this message."""
    if not url or not _response_url_allowed(url):
        log.warning("slack interaction: response_url refused: not a Slack or connection host")
        return
    try:
        httpx.post(url, json=body, timeout=2.0).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("slack interaction: posting to the response_url failed: %s", type(exc).__name__)


def _tell(payload: dict[str, Any], text: str, request: ApprovalRequest | None = None) -> None:
    """Answer the clicker; once the request is decided, replace the buttons with the
    outcome for everyone in the channel."""
    url = str(payload.get("response_url") or "")
    _respond(url, {"response_type": "ephemeral", "replace_original": False, "text": text})
    if request is not None and not request.is_open:
        names = ", ".join(d.user.get_username() for d in request.decisions.select_related("user"))
        outcome = f"{summary(request)[0]}: *{request.status}*" + (f" by {names}" if names else "")
        _respond(url, {"replace_original": True, "text": outcome,
                       "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": outcome}}]})  # fmt: skip


def _answer(text: str, status: int = 200) -> JsonResponse:
    return JsonResponse({"response_type": "ephemeral", "replace_original": False, "text": text},
                        status=status)  # fmt: skip


def forget_old_interactions() -> int:
    """Past twice the signature window a replay is refused by its timestamp alone, so the
    digests kept to refuse replays inside it can go (the scheduler calls this)."""
    cutoff = timezone.now() - timedelta(seconds=2 * TOLERANCE_SECONDS)
    deleted, _ = SeenInteraction.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


def _first_time(signature: str) -> bool:
    """Record this signed request; False when it was seen before (a replay)."""
    digest = hashlib.sha256(signature.encode()).hexdigest()
    try:
        with transaction.atomic():
            SeenInteraction.objects.create(digest=digest)
    except IntegrityError:
        return False
    return True


@csrf_exempt  # Slack signs its requests instead; there is no session here.
@require_POST
def interactions(request: HttpRequest) -> JsonResponse:
    body = request.body
    if len(body) > MAX_BODY:
        return _answer("request too large", 413)
    signature = request.headers.get("X-Slack-Signature", "")
    connection, why = verified_connection(
        body, request.headers.get("X-Slack-Request-Timestamp", ""), signature
    )
    if connection is None:
        log.warning("slack interaction refused: %s", why)
        return _answer(f"refused: {why}", 401)
    if not _first_time(signature):
        log.warning("slack interaction refused: a replay of a request already handled")
        return _answer("refused: this request was handled already (a replay)", 401)
    try:
        payload: dict[str, Any] = json.loads(request.POST.get("payload", ""))
        action = payload["actions"][0]
        slack_user = payload["user"]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return _answer("refused: not a block_actions payload", 400)
    if payload.get("type") != "block_actions" or action.get("action_id") not in (
        "approve",
        "reject",
    ):
        return _answer("ignored: not an approval button", 200)
    # A signing secret speaks for one workspace: the connection names it (its `team_id`
    # option), and only identities of that workspace may decide through it.
    workspace = str((connection.options or {}).get("team_id") or "")
    team = str((payload.get("team") or {}).get("id") or payload["user"].get("team_id") or "")
    if not workspace:
        text = f"refused: the Slack connection {connection.name} names no team_id, so no click is trusted"
        log.warning(
            "slack interaction refused: connection %s has no team_id option", connection.name
        )
        return _answer(text, 403)
    if team != workspace:
        log.warning("slack interaction refused: team %s is not %s's", team, connection.name)
        return _answer("refused: this workspace is not the one this app's secret belongs to", 403)
    identity = (
        ChatIdentity.objects.select_related("user")
        .filter(provider=ChatIdentity.Provider.SLACK, subject=slack_user, team=workspace)
        .first()
    )
    if identity is None or not identity.user.is_active:
        text = "Your Slack account is not linked to a Bulwark user, so it cannot decide."
        _tell(payload, text)
        return _answer(text)
    try:
        result = use_link(
            str(action.get("value", "")),
            identity.user,
            approve=action["action_id"] == "approve",
            comment=f"via Slack by <@{slack_user}>",
            channel=ApprovalDecision.Channel.SLACK,
        )
    except (LinkRefused, DecisionRefused) as exc:
        text = f"Not recorded: {exc.message}"
        _tell(payload, text)
        return _answer(text)
    status = result.request.status
    if result.recorded:
        text = f"Recorded your decision; the request is {status}."
    else:
        text = f"Nothing changed: the request is {status}."
    _tell(payload, text, result.request)
    return _answer(text)
