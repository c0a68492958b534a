"""Elastic/Kibana: the body is the user's template, so the recommended one is read (rule,
alert id, context.alerts with `kibana.alert.*` and ECS fields) and anything else fails
with the field it lacks (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import MappingError, Normalised, entities, severity


def _field(doc: dict[str, Any], dotted: str) -> Any:
    """ECS fields arrive flattened ("host.name") or nested ({"host": {"name"}})."""
    if dotted in doc:
        return doc[dotted]
    value: Any = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    docs = (payload.get("context") or {}).get("alerts") or [payload]
    rule = payload.get("rule") or {}
    out = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise MappingError(f"context.alerts[{i}]", "must be an object")
        uid = str(_field(doc, "kibana.alert.uuid") or payload.get("alert", {}).get("id") or "")
        if not uid:
            raise MappingError(
                f"context.alerts[{i}]", "needs kibana.alert.uuid (or alert.id in the template)"
            )
        out.append(Normalised(
            title=str(_field(doc, "kibana.alert.rule.name") or rule.get("name") or "Elastic alert")[:500],
            severity=severity(_field(doc, "kibana.alert.severity") or _field(doc, "event.severity")),
            status="firing", source="elastic", external_id=uid, occurred_at=None,
            entities=entities(hosts=[_field(doc, "host.name")], users=[_field(doc, "user.name")],
                              ips=[_field(doc, "source.ip"), _field(doc, "destination.ip")],
                              hashes=[_field(doc, "file.hash.sha256")], urls=[_field(doc, "url.full")],
                              domains=[_field(doc, "dns.question.name")]),
            raw=doc, dedup_key=(uid,),
        ))  # fmt: skip
    return out
