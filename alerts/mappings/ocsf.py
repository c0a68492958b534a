"""OCSF Detection Finding (class_uid 2004): `finding_info.uid` is the dedup key,
`severity_id` the severity, `activity_id`/`status_id` open or close it, and the flat
`observables[]` the entities (vendor-apis.md §8)."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import (
    MappingError,
    Normalised,
    entities,
    epoch,
    objects,
    require,
    section,
)

SEVERITY = {
    0: "info",
    1: "info",
    2: "low",
    3: "medium",
    4: "high",
    5: "critical",
    6: "critical",
    99: "medium",
}
# OCSF observable type_id → our entity kind.
OBSERVABLE = {1: "hosts", 2: "ips", 4: "users", 5: "users", 6: "urls", 8: "hashes", 20: "domains"}
RESOLVED_STATUS = 4  # status_id 4 = Resolved
CLOSE_ACTIVITY = 3


def normalise(payload: Any) -> list[Normalised]:
    items = payload if isinstance(payload, list) else [payload]
    return [
        _one(item, f"[{i}]" if isinstance(payload, list) else "") for i, item in enumerate(items)
    ]


def _one(item: Any, path: str) -> Normalised:
    if not isinstance(item, dict):
        raise MappingError(path or "(body)", "must be a JSON object")
    if item.get("class_uid") != 2004:
        raise MappingError(
            f"{path}.class_uid".lstrip("."), "an OCSF Detection Finding has class_uid 2004"
        )
    info = require(item, "finding_info", path, dict)
    uid = str(require(info, "uid", f"{path}.finding_info".lstrip("."), (str, int)))
    found: dict[str, list[Any]] = {}
    for observable in objects(item, "observables", path):
        type_id = observable.get("type_id")
        kind = OBSERVABLE.get(type_id) if isinstance(type_id, int) else None
        if kind and observable.get("value"):
            found.setdefault(kind, []).append(observable["value"])
    closed = item.get("status_id") == RESOLVED_STATUS or item.get("activity_id") == CLOSE_ACTIVITY
    when = item.get("time")
    severity_id = item.get("severity_id", 99)
    metadata = section(item, "metadata", path)
    product = section(metadata, "product", f"{path}.metadata".lstrip("."))
    return Normalised(
        title=str(info.get("title") or "OCSF detection finding")[:500],
        severity=SEVERITY.get(severity_id, "medium") if isinstance(severity_id, int) else "medium",
        status="resolved" if closed else "firing",
        source=str(product.get("name") or "ocsf"),
        external_id=uid,
        occurred_at=epoch(when / 1000, f"{path}.time".lstrip("."))
        if isinstance(when, int | float) and not isinstance(when, bool)
        else None,
        entities=entities(**found),
        raw=item,
        dedup_key=(uid,),
    )
