"""Microsoft Teams via a Workflows webhook (vendor-apis.md §3.4): an Adaptive Card posted
to the workflow's URL, which is its own credential (the `sig` query parameter)."""

from __future__ import annotations

from typing import Any

import httpx

from integrations.context import ActionContext
from integrations.errors import PermanentError
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import VendorAPI, credential

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


class Teams(VendorAPI):
    integration = "teams"

    def webhook(self) -> str:
        """The workflow's URL, which must be on the connection's host (the SSRF guard and
        the audit trail see the host; the secret part stays in the credentials)."""
        url = credential(self.connection, "webhook_url")
        parsed, base = httpx.URL(url), httpx.URL(self.connection.base_url)
        if (parsed.scheme, parsed.host, parsed.port) != (base.scheme, base.host, base.port):
            raise PermanentError(
                "the webhook_url is not on the connection's base_url host", kind="connection"
            )
        return url


def card(title: str, text: str, facts: dict[str, str] | None, link_url: str | None,
         link_title: str) -> dict[str, Any]:  # fmt: skip
    """The Adaptive Card: a title, text, a fact set and an Action.OpenUrl button (the only
    kind of button a webhook card may carry; approvals link to a signed page)."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": text, "wrap": True},
    ]
    if facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": k, "value": str(v)} for k, v in facts.items()]}
        )
    content: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if link_url:
        content["actions"] = [{"type": "Action.OpenUrl", "title": link_title, "url": link_url}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}]}  # fmt: skip


@action("teams.post_card", plan='post the card "{title}" to Microsoft Teams', side_effect="write", connection="teams", connection_required=True,
        output="`status_code`: 202 when the workflow accepted the card")  # fmt: skip
def post_card(ctx: ActionContext, *, title: str, text: str, facts: dict[str, str] | None = None,
              link_url: str | None = None, link_title: str = "Open in Bulwark") -> dict[str, Any]:  # fmt: skip
    """Post an Adaptive Card to a Teams channel through its Workflows webhook."""
    with Teams(ctx) as teams:
        response = teams.request(
            "POST", teams.webhook(), json=card(title, text, facts, link_url, link_title)
        )
    return {"status_code": response.status_code, "accepted": response.status_code in (200, 202)}


@prober("teams")
def check_connection(ctx: ActionContext) -> str:
    """A workflow URL can only be tested by posting; this checks it is well formed."""
    with Teams(ctx) as teams:
        url = httpx.URL(teams.webhook())
    if "sig" not in url.params:
        raise PermanentError("the webhook_url has no `sig` parameter", kind="connection")
    return "the workflow URL is well formed (posting is the only real test)"
