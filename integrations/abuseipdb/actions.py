"""AbuseIPDB v2 (vendor-apis.md §6.2): an IP address's abuse confidence and reports."""

from __future__ import annotations

import ipaddress
from typing import Any

from integrations.context import ActionContext
from integrations.errors import PermanentError
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import VendorAPI, credential, json_body

FIELDS = ("ipAddress", "isPublic", "ipVersion", "isWhitelisted", "abuseConfidenceScore", "countryCode",
          "usageType", "isp", "domain", "hostnames", "isTor", "totalReports", "numDistinctUsers",
          "lastReportedAt")  # fmt: skip


class AbuseIPDB(VendorAPI):
    integration = "abuseipdb"

    def auth_headers(self) -> dict[str, str]:
        return {"Key": credential(self.connection, "api_key"), "Accept": "application/json"}

    def check(self, ip: str, max_age_days: int) -> dict[str, Any]:
        response = self.request("GET", "check", params={"ipAddress": ip, "maxAgeInDays": max_age_days},
                                expect_status=(422,))  # fmt: skip
        body = json_body(response)
        if response.status_code == 422:
            details = "; ".join(str(e.get("detail")) for e in body.get("errors", []))
            raise PermanentError(f"AbuseIPDB refused the lookup: {details}", kind="validation")
        data = body.get("data") or {}
        return {field: data.get(field) for field in FIELDS}


@action("abuseipdb.check_ip", side_effect="read", connection="abuseipdb", connection_required=True,
        output="`abuseConfidenceScore` (0-100), `totalReports`, `countryCode`, `isp`, `isTor`, `lastReportedAt`, …")  # fmt: skip
def check_ip(ctx: ActionContext, *, ip: str, max_age_days: int = 90) -> dict[str, Any]:
    """How abusive AbuseIPDB's reporters find an IP address, over the last `max_age_days`."""
    try:
        address = str(ipaddress.ip_address(ip))
    except ValueError:
        raise PermanentError(f"not an IP address: {ip!r}", kind="validation") from None
    if not 1 <= max_age_days <= 365:
        raise PermanentError("max_age_days must be from 1 to 365", kind="validation")
    with AbuseIPDB(ctx) as abuse:
        return abuse.check(address, max_age_days)


@prober("abuseipdb")
def check_connection(ctx: ActionContext) -> str:
    with AbuseIPDB(ctx) as abuse:
        abuse.check("127.0.0.1", 1)
    return "the API key is accepted"
