"""Slack's interactivity endpoint: an Approve or Reject button click (vendor-apis.md §3.3).

Slack POSTs `payload=<JSON>` form-encoded, signed with the app's signing secret (`v0`:
HMAC-SHA256 over "v0:{timestamp}:{raw body}", compared in constant time, refused outside
five minutes). The clicking Slack user must be mapped to a Bulwark user
(accounts.ChatIdentity), whose roles, groups and four-eyes apply as anywhere else. The
button's value is a signed decision link token (core.approvals.links), so a click can
only decide the request it was posted for, while it is current.

Slack wants an answer within three seconds; the decision is one transaction, and the
answer replaces nothing: it tells the clicking person what happened, ephemerally.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import ChatIdentity
from core.approval_models import ApprovalDecision, SeenInteraction
from core.approvals.decide import DecisionRefused
from core.approvals.links import LinkRefused, use_link
from integrations.models import Connection

log = logging.getLogger(__name__)
TOLERANCE_SECONDS = 300
MAX_BODY = 64 * 1024


def _secrets() -> list[bytes]:
    found = []
    for connection in Connection.objects.filter(integration="slack"):
        secret = connection.credentials.get("signing_secret")
        if secret:
            found.append(str(secret).encode())
    return found


def signature_valid(
    body: bytes, timestamp: str, signature: str, *, now: float | None = None
) -> str | None:
    """None when the request is Slack's and fresh; otherwise why not."""
    try:
        sent = int(timestamp)
    except ValueError:
        return "missing or malformed X-Slack-Request-Timestamp"
    if abs((now if now is not None else time.time()) - sent) > TOLERANCE_SECONDS:
        return "the request timestamp is more than 5 minutes away"
    base = b"v0:" + timestamp.encode() + b":" + body
    for secret in _secrets():
        expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature):
            return None
    return "the signature does not match"


def _answer(text: str, status: int = 200) -> JsonResponse:
    return JsonResponse({"response_type": "ephemeral", "replace_original": False, "text": text},
                        status=status)  # fmt: skip


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
    why = signature_valid(body, request.headers.get("X-Slack-Request-Timestamp", ""), signature)
    if why is not None:
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
    team = str((payload.get("team") or {}).get("id") or payload["user"].get("team_id") or "")
    identity = (
        ChatIdentity.objects.select_related("user")
        .filter(provider=ChatIdentity.Provider.SLACK, subject=slack_user, team__in=[team, ""])
        .first()
    )
    if identity is None or not identity.user.is_active:
        return _answer("Your Slack account is not linked to a Bulwark user, so it cannot decide.")
    try:
        result = use_link(
            str(action.get("value", "")),
            identity.user,
            approve=action["action_id"] == "approve",
            comment=f"via Slack by <@{slack_user}>",
            channel=ApprovalDecision.Channel.SLACK,
        )
    except (LinkRefused, DecisionRefused) as exc:
        return _answer(f"Not recorded: {exc.message}")
    status = result.request.status
    if result.recorded:
        return _answer(f"Recorded your decision; the request is {status}.")
    return _answer(f"Nothing changed: the request is {status}.")
