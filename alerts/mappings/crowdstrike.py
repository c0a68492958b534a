"""CrowdStrike Falcon webhook notifications (Fusion/Store): `meta` and `data` with
flattened dotted keys such as `detections.hostname` **(observed)** (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import (
    MappingError,
    Normalised,
    entities,
    epoch,
    require,
    section,
    severity,
    timestamp,
)


def _get(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        for key in (name, f"detections.{name}", f"detection.{name}", f"incident.{name}"):
            if data.get(key) not in (None, ""):
                return data[key]
    return None


def _when(data: dict[str, Any], meta: dict[str, Any]) -> Any:
    """The detection's time: an RFC 3339 string, or epoch seconds in `meta.timestamp`."""
    value = _get(data, "timestamp", "created_timestamp") or meta.get("timestamp")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch(value, "meta.timestamp")
    return timestamp(value, "data.timestamp")


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    data = require(payload, "data", "", dict)
    meta = section(payload, "meta")
    external = str(
        _get(data, "composite_id", "id", "detection_id") or meta.get("trigger_name") or ""
    )
    device = data.get("device") if isinstance(data.get("device"), dict) else {}
    host = _get(data, "hostname") or device.get("hostname")
    aid = _get(data, "device_id", "aid") or device.get("device_id")
    return [Normalised(
        title=str(_get(data, "display_name", "description", "name") or meta.get("trigger_name") or "Falcon detection")[:500],
        severity=severity(_get(data, "severity_name", "severity"), "high"),
        status="firing", source="crowdstrike", external_id=external,
        occurred_at=_when(data, meta),
        entities=entities(hosts=[h for h in (host, aid) if h], users=[_get(data, "user_name")] if _get(data, "user_name") else [],
                          ips=[_get(data, "local_ip")] if _get(data, "local_ip") else [],
                          hashes=[_get(data, "sha256")] if _get(data, "sha256") else []),
        raw=payload, dedup_key=(external,) if external else (str(sorted(data.items())),),
    )]  # fmt: skip
