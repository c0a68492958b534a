"""Microsoft Sentinel incidents forwarded by a Logic App: `object.properties` with
`title`, `severity`, `status`, `incidentNumber`; deduplicated on the incident number and
its last change, since Logic Apps retry (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import (
    MappingError,
    Normalised,
    entities,
    objects,
    require,
    section,
    severity,
    timestamp,
)

ENTITY_KINDS = {"host": "hosts", "account": "users", "ip": "ips", "filehash": "hashes", "url": "urls",
                "dns": "domains"}  # fmt: skip


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    incident = require(payload, "object", "", dict)
    props = require(incident, "properties", "object", dict)
    number = str(props.get("incidentNumber") or incident.get("name") or "")
    found: dict[str, list[Any]] = {}
    where = "object.properties.relatedEntities"
    for i, entity in enumerate(objects(props, "relatedEntities", "object.properties")):
        kind = ENTITY_KINDS.get(str(entity.get("kind", "")).lower())
        p = section(entity, "properties", f"{where}[{i}]")
        value = (
            p.get("hostName")
            or p.get("accountName")
            or p.get("address")
            or p.get("hashValue")
            or p.get("url")
            or p.get("domainName")
        )
        if kind and value:
            found.setdefault(kind, []).append(value)
    status = "resolved" if str(props.get("status", "")).lower() == "closed" else "firing"
    return [Normalised(
        title=str(props.get("title") or "Sentinel incident")[:500], severity=severity(props.get("severity")),
        status=status, source="sentinel", external_id=number,
        occurred_at=timestamp(props.get("createdTimeUtc"), "object.properties.createdTimeUtc"),
        entities=entities(**found), raw=payload, dedup_key=(number,),
    )]  # fmt: skip
