"""Elastic/Kibana: the body is the user's template, so the recommended one is read (rule,
alert id, context.alerts with `kibana.alert.*` and ECS fields) and anything else fails
with the field it lacks (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import MappingError, Normalised, entities, section, severity, timestamp


def _field(doc: dict[str, Any], dotted: str) -> Any:
    """ECS fields arrive flattened ("host.name") or nested ({"host": {"name"}})."""
    if dotted in doc:
        return doc[dotted]
    value: Any = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _status(doc: dict[str, Any], template_alert: dict[str, Any]) -> str:
    """Kibana's recovery action (`{{alert.actionGroup}}` = recovered) or a recovered alert
    document resolves the alert."""
    recovered = "recovered" in (
        template_alert.get("actionGroup"),
        _field(doc, "kibana.alert.status"),
    )
    return "resolved" if recovered else "firing"


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    docs = section(payload, "context").get("alerts") or [payload]
    if not isinstance(docs, list):
        raise MappingError("context.alerts", "must be a list")
    rule = section(payload, "rule")
    template_alert = section(payload, "alert")
    out = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise MappingError(f"context.alerts[{i}]", "must be an object")
        uid = _field(doc, "kibana.alert.uuid") or template_alert.get("id") or ""
        if not isinstance(uid, str | int) or isinstance(uid, bool):
            raise MappingError(
                f"context.alerts[{i}]", "kibana.alert.uuid (or alert.id) must be text"
            )
        uid = str(uid)
        if not uid:
            raise MappingError(
                f"context.alerts[{i}]", "needs kibana.alert.uuid (or alert.id in the template)"
            )
        out.append(Normalised(
            title=str(_field(doc, "kibana.alert.rule.name") or rule.get("name") or "Elastic alert")[:500],
            severity=severity(_field(doc, "kibana.alert.severity") or _field(doc, "event.severity")),
            status=_status(doc, template_alert), source="elastic", external_id=uid,
            occurred_at=timestamp(_field(doc, "@timestamp") or payload.get("date"), f"context.alerts[{i}].@timestamp"),
            entities=entities(hosts=[_field(doc, "host.name")], users=[_field(doc, "user.name")],
                              ips=[_field(doc, "source.ip"), _field(doc, "destination.ip")],
                              hashes=[_field(doc, "file.hash.sha256")], urls=[_field(doc, "url.full")],
                              domains=[_field(doc, "dns.question.name")]),
            raw=doc, dedup_key=(uid,),
        ))  # fmt: skip
    return out
