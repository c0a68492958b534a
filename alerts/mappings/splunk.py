"""Splunk's webhook alert action: `sid`, `search_name`, `result` (the first row only,
every value a string); deduplicated on `sid` (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import MappingError, Normalised, entities, require, severity

HOST_FIELDS, USER_FIELDS, IP_FIELDS = (
    ("host", "dest", "dest_host", "src_host"),
    ("user", "src_user"),
    ("src", "src_ip", "dest_ip", "ip"),
)


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    sid = require(payload, "sid", "")
    result = payload.get("result") or {}
    if not isinstance(result, dict):
        raise MappingError("result", "must be an object")

    def pick(names: tuple[str, ...]) -> list[Any]:
        return [result[n] for n in names if result.get(n)]

    return [Normalised(
        title=str(payload.get("search_name") or "Splunk alert")[:500],
        severity=severity(result.get("severity") or result.get("urgency"), "medium"),
        status="firing", source=str(payload.get("app") or "splunk"), external_id=sid, occurred_at=None,
        entities=entities(hosts=pick(HOST_FIELDS), users=pick(USER_FIELDS), ips=pick(IP_FIELDS),
                          hashes=pick(("file_hash", "sha256", "md5")), urls=pick(("url",)),
                          domains=pick(("domain", "query"))),
        raw=payload, dedup_key=(sid,),
    )]  # fmt: skip
