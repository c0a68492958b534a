"""Jira Cloud REST v3 (vendor-apis.md §5.1): basic auth with e-mail and API token,
Atlassian Document Format for rich text, and search before create for idempotency."""

from __future__ import annotations

from typing import Any

import httpx

from integrations.errors import PermanentError
from integrations.vendor import VendorAPI, credential, json_body


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document, one paragraph per line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        if line
        else {"type": "paragraph"}
        for line in text.splitlines() or [""]
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


class Jira(VendorAPI):
    integration = "jira"

    def basic_auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(
            credential(self.connection, "email"), credential(self.connection, "api_token")
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, expect_status=(400, 404), **kwargs)
        body = json_body(response) if response.content else {}
        if response.status_code in (400, 404):
            problems = [
                *body.get("errorMessages", []),
                *(f"{k}: {v}" for k, v in (body.get("errors") or {}).items()),
            ]
            raise PermanentError(
                f"Jira {method} {path} returned HTTP {response.status_code}: {'; '.join(problems) or 'no detail'}",
                kind="not_found" if response.status_code == 404 else "validation",
                details={"status_code": response.status_code},
            )
        return body

    def search_label(self, label: str) -> list[dict[str, Any]]:
        body = self.call("GET", "rest/api/3/search/jql",
                         params={"jql": f'labels = "{label}"', "fields": "summary,status,labels", "maxResults": 5})  # fmt: skip
        return list(body.get("issues") or [])

    def create_issue(self, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "rest/api/3/issue", json={"fields": fields}))

    def add_comment(self, issue: str, text: str) -> dict[str, Any]:
        return dict(
            self.call("POST", f"rest/api/3/issue/{issue}/comment", json={"body": adf(text)})
        )
