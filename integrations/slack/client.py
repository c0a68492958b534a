"""Slack Web API (vendor-apis.md §3.1): bearer token, and HTTP 200 with `ok: false` for
logical errors, which must be read from the body."""

from __future__ import annotations

from typing import Any

from integrations.errors import PermanentError, TransientError
from integrations.vendor import VendorAPI, credential, json_body

# `ok: false` errors another attempt may cure; the rest are permanent.
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout"})  # fmt: skip


class Slack(VendorAPI):
    integration = "slack"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential(self.connection, 'token')}"}

    def method(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call a Web API method; an `ok: false` answer raises with Slack's error code."""
        response = self.request(
            "POST", name, json=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        answer = json_body(response)
        if not isinstance(answer, dict):
            raise TransientError(f"Slack {name} answered a {type(answer).__name__}")
        if answer.get("ok") is True:
            return answer
        error = str(answer.get("error", "unknown_error"))
        message = f"Slack {name} failed: {error}"
        if error in TRANSIENT_ERRORS:
            raise TransientError(message, kind="slack_error", details={"error": error})
        raise PermanentError(message, kind="slack_error", details={"error": error})
