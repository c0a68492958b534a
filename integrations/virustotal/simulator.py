"""A VirusTotal v3 simulator: file, IP and domain objects, NotFoundError, quota errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from integrations.lab.simulator import Simulator, json_response

LAB_API_KEY = "lab-virustotal-key-0000"  # the lab's own, not a secret
MALICIOUS_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def _stats(malicious: int, harmless: int) -> dict[str, int]:
    return {"malicious": malicious, "suspicious": 1 if malicious else 0, "harmless": harmless,
            "undetected": 70 - malicious - harmless, "timeout": 0}  # fmt: skip


KNOWN: dict[tuple[str, str], dict[str, Any]] = {
    ("files", MALICIOUS_SHA256): {"type": "file", "attributes": {
        "sha256": MALICIOUS_SHA256, "md5": "44d88612fea8a8f36de82e1278abb02f", "size": 68,
        "type_description": "Win32 EXE", "meaningful_name": "invoice.exe", "reputation": -87,
        "tags": ["peexe", "trojan"], "last_analysis_date": 1764633600,
        "last_analysis_stats": _stats(42, 0)}},
    ("ip_addresses", "198.51.100.7"): {"type": "ip_address", "attributes": {
        "asn": 64500, "as_owner": "Example Hosting", "country": "NL", "network": "198.51.100.0/24",
        "reputation": -12, "tags": [], "last_analysis_stats": _stats(9, 50)}},
    ("domains", "virustotal.com"): {"type": "domain", "attributes": {
        "registrar": "MarkMonitor Inc.", "creation_date": 1032308169, "categories": {"Forcepoint": "security"},
        "reputation": 50, "tags": [], "last_analysis_stats": _stats(0, 65)}},
    ("domains", "login-micros0ft.example"): {"type": "domain", "attributes": {
        "registrar": "NameCheap", "creation_date": 1764000000, "categories": {"Forcepoint": "phishing"},
        "reputation": -40, "tags": ["phishing"], "last_analysis_stats": _stats(17, 20)}},
}  # fmt: skip


class VirusTotalSimulator(Simulator):
    name = "virustotal"
    base_path = "/api/v3"

    def routes(self) -> Iterable[Rule]:
        return [Rule("/api/v3/<any(files, ip_addresses, domains):collection>/<path:ioc>",
                     methods=["GET"], endpoint="lookup")]  # fmt: skip

    def error(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        code = {401: "WrongCredentialsError", 404: "NotFoundError", 429: "QuotaExceededError",
                400: "InvalidArgumentError", 403: "ForbiddenError"}.get(status, "TransientError")  # fmt: skip
        return json_response({"error": {"code": code, "message": message}}, status, headers)

    def rate_limit_headers(self, retry_after: float) -> dict[str, str]:
        return {}  # VirusTotal sends no Retry-After

    def lookup(self, request: Request, collection: str, ioc: str) -> Response:
        if request.headers.get("x-apikey") != LAB_API_KEY:
            return self.error(401, "Wrong API key")
        found = KNOWN.get((collection, ioc.lower()))
        if found is None:
            return self.error(404, f'{collection[:-1].replace("_", " ")} "{ioc}" not found')
        base = f"{request.host_url.rstrip('/')}{request.script_root}/api/v3/{collection}/{ioc}"
        return json_response({"data": {"id": ioc.lower(), "type": found["type"], "links": {"self": base},
                                       "attributes": found["attributes"]}})  # fmt: skip
