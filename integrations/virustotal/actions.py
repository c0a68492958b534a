"""VirusTotal API v3 (vendor-apis.md §6.1): file, IP and domain reports. An unknown
indicator (404 NotFoundError) is an answer, not a failure."""

from __future__ import annotations

import re
from typing import Any

from integrations.context import ActionContext
from integrations.errors import PermanentError, TransientError
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import VendorAPI, credential, json_body

# Free keys get ~4 lookups a minute and send no Retry-After: wait for the next window.
QUOTA_WAIT_SECONDS = 60.0
HASH_RE = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
COMMON = ("last_analysis_stats", "last_analysis_date", "reputation", "total_votes", "tags")
BY_TYPE = {
    "file": ("sha256", "md5", "sha1", "size", "type_description", "meaningful_name"),
    "ip_address": ("asn", "as_owner", "country", "network"),
    "domain": ("registrar", "creation_date", "categories"),
}


class VirusTotal(VendorAPI):
    integration = "virustotal"

    def auth_headers(self) -> dict[str, str]:
        return {"x-apikey": credential(self.connection, "api_key")}

    def report(self, path: str, indicator: str) -> dict[str, Any]:
        response = self.request("GET", path, expect_status=(400, 404, 429))
        body = json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code == 404:
            return {"found": False, "id": indicator}
        if response.status_code == 429:
            raise TransientError(
                f"VirusTotal quota exceeded ({(error or {}).get('code', 'QuotaExceededError')})",
                kind="rate_limited", retry_after=QUOTA_WAIT_SECONDS,
            )  # fmt: skip
        if response.status_code == 400:
            raise PermanentError(f"VirusTotal refused {indicator!r}: {(error or {}).get('message')}",
                                 kind="validation")  # fmt: skip
        data = body.get("data") or {}
        attributes = data.get("attributes") or {}
        kind = str(data.get("type", ""))
        fields = {
            name: attributes[name]
            for name in (*COMMON, *BY_TYPE.get(kind, ()))
            if name in attributes
        }
        stats = attributes.get("last_analysis_stats") or {}
        return {"found": True, "id": data.get("id", indicator), "type": kind,
                "malicious": int(stats.get("malicious", 0)), "suspicious": int(stats.get("suspicious", 0)),
                "link": (data.get("links") or {}).get("self"), **fields}  # fmt: skip


_OUTPUT = "`found`; when found: `malicious`, `suspicious`, `last_analysis_stats`, `reputation`, `tags`, `link` and type-specific fields"


@action("virustotal.file_report", side_effect="read", connection="virustotal",
        connection_required=True, output=_OUTPUT)  # fmt: skip
def file_report(
    ctx: ActionContext,
    *,
    hash: str | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """VirusTotal's verdicts on a file, by its MD5, SHA-1 or SHA-256 (`hash`; `sha256` is
    the same input under the name SPEC §3's example gives it)."""
    digest = (hash or sha256 or "").lower()
    if not HASH_RE.fullmatch(digest):
        raise PermanentError(
            f"not an MD5, SHA-1 or SHA-256 hex digest: {digest!r}", kind="validation"
        )
    with VirusTotal(ctx) as vt:
        return vt.report(f"files/{digest}", digest)


@action("virustotal.ip_report", side_effect="read", connection="virustotal",
        connection_required=True, output=_OUTPUT)  # fmt: skip
def ip_report(ctx: ActionContext, *, ip: str) -> dict[str, Any]:
    """VirusTotal's verdicts and network facts on an IP address."""
    import ipaddress

    try:
        address = str(ipaddress.ip_address(ip))
    except ValueError:
        raise PermanentError(f"not an IP address: {ip!r}", kind="validation") from None
    with VirusTotal(ctx) as vt:
        return vt.report(f"ip_addresses/{address}", address)


@action("virustotal.domain_report", side_effect="read", connection="virustotal",
        connection_required=True, output=_OUTPUT)  # fmt: skip
def domain_report(ctx: ActionContext, *, domain: str) -> dict[str, Any]:
    """VirusTotal's verdicts and registration facts on a domain."""
    name = domain.strip().rstrip(".").lower()
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", name):
        raise PermanentError(f"not a domain name: {domain!r}", kind="validation")
    with VirusTotal(ctx) as vt:
        return vt.report(f"domains/{name}", name)


@prober("virustotal")
def check_connection(ctx: ActionContext) -> str:
    """A report on a well-known domain proves the key."""
    with VirusTotal(ctx) as vt:
        vt.report("domains/virustotal.com", "virustotal.com")
    return "the API key is accepted"
