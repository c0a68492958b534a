"""Prometheus Alertmanager webhook, payload version 4 (vendor-apis.md §7): one alert per
element of `alerts`, deduplicated on `fingerprint` + `startsAt`."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import (
    MappingError,
    Normalised,
    entities,
    require,
    section,
    severity,
    timestamp,
)


def _host(instance: str) -> str:
    """`instance` is host:port in most scrape configs."""
    host, _, port = instance.rpartition(":")
    return host.strip("[]") if host and port.isdigit() else instance


def normalise(payload: Any, *, default_title: str = "Alertmanager alert") -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    if str(payload.get("version", "4")) != "4":
        raise MappingError(
            "version", f"Alertmanager payload version 4 expected, got {payload['version']!r}"
        )
    alerts = require(payload, "alerts", "", list)
    common = section(payload, "commonLabels")
    out = []
    for i, alert in enumerate(alerts):
        path = f"alerts[{i}]"
        labels = require(alert, "labels", path, dict)
        annotations = section(alert, "annotations", path)
        status = str(alert.get("status", payload.get("status", "firing")))
        if status not in ("firing", "resolved"):
            raise MappingError(f"{path}.status", "must be firing or resolved")
        instance = labels.get("instance")
        instance = instance if isinstance(instance, str) else ""  # labels are strings
        host = (
            labels.get("host") or labels.get("hostname") or (_host(instance) if instance else None)
        )
        fingerprint = str(alert.get("fingerprint") or "")
        starts = str(alert.get("startsAt") or "")
        out.append(Normalised(
            title=str(annotations.get("summary") or labels.get("alertname") or default_title)[:500],
            severity=severity(labels.get("severity") or common.get("severity")),
            status=status, source=str(payload.get("receiver") or "alertmanager"),
            external_id=fingerprint, occurred_at=timestamp(alert.get("startsAt"), f"{path}.startsAt"),
            entities=entities(hosts=[host] if host else [], ips=[host] if host else [],
                              users=[labels["user"]] if labels.get("user") else []),
            raw=alert, dedup_key=(fingerprint, starts) if fingerprint else (str(sorted(labels.items())), starts),
        ))  # fmt: skip
    return out
