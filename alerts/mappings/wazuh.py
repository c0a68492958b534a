"""Wazuh alerts as integratord's custom script forwards them: `rule`, `agent`, `id`,
`timestamp`, `data`; severity from `rule.level` (0-15) (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import MappingError, Normalised, entities, require, section, timestamp


def _severity(level: int) -> str:
    return (
        "critical"
        if level >= 13
        else "high"
        if level >= 10
        else "medium"
        if level >= 7
        else "low"
        if level >= 4
        else "info"
    )


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    rule = require(payload, "rule", "", dict)
    level = rule.get("level", 0)
    if not isinstance(level, int):
        raise MappingError("rule.level", "must be a number")
    agent = section(payload, "agent")
    data = section(payload, "data")
    external = str(payload.get("id") or "")
    when = payload.get("timestamp")
    return [Normalised(
        title=str(rule.get("description") or "Wazuh alert")[:500], severity=_severity(level), status="firing",
        source="wazuh", external_id=external,
        # Wazuh writes +0000 offsets; Django's parser wants +00:00.
        occurred_at=timestamp(when[:-2] + ":" + when[-2:] if isinstance(when, str) and when[-5:-4] in ("+", "-") else when, "timestamp"),
        entities=entities(hosts=[agent.get("name")], ips=[agent.get("ip"), data.get("srcip")],
                          users=[data.get("srcuser") or data.get("dstuser")]),
        raw=payload, dedup_key=(external,) if external else (str(rule.get("id")), str(when)),
    )]  # fmt: skip
