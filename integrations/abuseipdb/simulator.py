"""An AbuseIPDB v2 simulator: /check with the vendor's 422 and 429 answers."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_API_KEY = "lab-abuseipdb-key-0000"  # the lab's own, not a secret
REPORTED = {"198.51.100.7": (97, 412, "NL", "Example Hosting", False)}


class AbuseIPDBSimulator(Simulator):
    name = "abuseipdb"
    base_path = "/api/v2"

    def routes(self) -> Iterable[Rule]:
        return [Rule("/api/v2/check", methods=["GET"], endpoint="check")]

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return json_response({"errors": [{"detail": message, "status": status}]}, status, headers)

    def rate_limit_headers(self, retry_after: float) -> dict[str, str]:
        return {"Retry-After": str(int(retry_after)), "X-RateLimit-Limit": "1000",
                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time() + retry_after))}  # fmt: skip

    def check(self, request: Request) -> Response:
        if request.headers.get("Key") != LAB_API_KEY:
            return self.error(
                401, "Authentication failed. Your API key is either missing, incorrect, or revoked."
            )
        raw = request.args.get("ipAddress", "")
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            return json_response({"errors": [{"detail": "The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888).",
                                              "status": 422, "source": {"parameter": "ipAddress"}}]}, 422)  # fmt: skip
        score, reports, country, isp, tor = REPORTED.get(
            str(address), (0, 0, "US", "Example ISP", False)
        )
        return json_response({"data": {
            "ipAddress": str(address), "isPublic": address.is_global, "ipVersion": address.version,
            "isWhitelisted": False, "abuseConfidenceScore": score, "countryCode": country,
            "usageType": "Data Center/Web Hosting/Transit", "isp": isp, "domain": "example.net",
            "hostnames": [], "isTor": tor, "totalReports": reports, "numDistinctUsers": min(reports, 87),
            "lastReportedAt": "2026-12-01T22:14:07+00:00" if reports else None,
        }}, headers={"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "999"})  # fmt: skip
