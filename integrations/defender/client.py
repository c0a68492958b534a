"""Microsoft Defender for Endpoint (vendor-apis.md §1.2, §2.1): an Entra ID token by client
credentials, machine actions that finish asynchronously, and `{"error": {code, message}}`."""

from __future__ import annotations

import re
from typing import Any

from integrations.errors import PermanentError
from integrations.vendor import VendorAPI, credential, json_body

LOGIN_URL = "https://login.microsoftonline.com"
SCOPE = "https://api.securitycenter.microsoft.com/.default"
FINAL = {"Succeeded", "Failed", "TimeOut", "Cancelled"}


MACHINE_ID_RE = re.compile(r"^[0-9a-f]{40}$")


def check_machine_id(machine_id: str) -> None:
    """Defender machine ids are 40 hex digits; anything else never reaches a path or an
    OData filter (where a quote could widen what it matches)."""
    if not MACHINE_ID_RE.fullmatch(machine_id):
        raise PermanentError(
            f"not a Defender machine id (40 hex digits): {machine_id!r}", kind="validation"
        )


class DefenderError(PermanentError):
    """Defender refused the request; `code` is its error code (ResourceNotFound, …)."""

    def __init__(self, message: str, *, code: str, kind: str = "vendor_error") -> None:
        super().__init__(message, kind=kind, details={"code": code})
        self.code = code


class Defender(VendorAPI):
    integration = "defender"

    def oauth_token_request(self) -> tuple[str, dict[str, str]]:
        login = str(self.connection.options.get("login_url") or LOGIN_URL).rstrip("/")
        tenant = credential(self.connection, "tenant_id")
        form = {"grant_type": "client_credentials", "scope": SCOPE,
                "client_id": credential(self.connection, "client_id"),
                "client_secret": credential(self.connection, "client_secret")}  # fmt: skip
        return f"{login}/{tenant}/oauth2/v2.0/token", form

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, expect_status=(400, 403, 404), **kwargs)
        body = json_body(response) if response.content else {}
        if response.status_code >= 400:
            error = body.get("error") or {}
            code = str(error.get("code", "BadRequest"))
            kind = {404: "not_found", 403: "forbidden"}.get(response.status_code, "vendor_error")
            raise DefenderError(f"Defender {method} {path}: HTTP {response.status_code} {code}: "
                                f"{error.get('message', '')}", code=code, kind=kind)  # fmt: skip
        return body

    def machine_action(self, action_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"api/machineactions/{action_id}"))

    def latest_action(self, machine_id: str, kinds: tuple[str, ...]) -> dict[str, Any] | None:
        """The newest machine action of one of `kinds` on the machine, if any."""
        check_machine_id(machine_id)
        types = " or ".join(f"type eq '{kind}'" for kind in kinds)
        body = self.call("GET", "api/machineactions",
                         params={"$filter": f"machineId eq '{machine_id}' and ({types})"})  # fmt: skip
        actions = sorted(
            body.get("value") or [], key=lambda a: str(a.get("creationDateTimeUtc", ""))
        )
        return dict(actions[-1]) if actions else None

    def request_action(self, machine_id: str, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        check_machine_id(machine_id)
        return dict(self.call("POST", f"api/machines/{machine_id}/{verb}", json=body))

    def package_uri(self, action_id: str) -> str:
        body = self.call("GET", f"api/machineactions/{action_id}/getPackageUri")
        return str(body["value"])
