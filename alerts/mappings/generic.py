"""Generic JSON (vendor-apis.md §7): `title`, `severity`, `source`, `external_id`,
`observables[] {type, value}`, optional `status`, `occurred_at` and `raw`; one alert a
delivery, or a list of them under `alerts`."""

from __future__ import annotations

from typing import Any

from alerts.mappings.base import MappingError, Normalised, entities, require, severity, timestamp

OBSERVABLE_KINDS = {"host": "hosts", "hostname": "hosts", "user": "users", "ip": "ips", "ipv4": "ips",
                    "ipv6": "ips", "hash": "hashes", "sha256": "hashes", "md5": "hashes", "sha1": "hashes",
                    "url": "urls", "domain": "domains"}  # fmt: skip


def normalise(payload: Any) -> list[Normalised]:
    if isinstance(payload, dict) and isinstance(payload.get("alerts"), list):
        return [_one(item, f"alerts[{i}]") for i, item in enumerate(payload["alerts"])]
    return [_one(payload, "")]


def _one(item: Any, path: str) -> Normalised:
    if not isinstance(item, dict):
        raise MappingError(path or "(body)", "must be a JSON object")
    title = require(item, "title", path)
    found: dict[str, list[Any]] = {}
    observables = item.get("observables", [])
    if not isinstance(observables, list):
        raise MappingError(f"{path}.observables".lstrip("."), "must be a list")
    for i, observable in enumerate(observables):
        where = f"{path}.observables[{i}]".lstrip(".")
        kind = OBSERVABLE_KINDS.get(str(require(observable, "type", where)).lower())
        if kind is None:
            raise MappingError(f"{where}.type", f"unknown observable type {observable['type']!r}")
        found.setdefault(kind, []).append(require(observable, "value", where, (str, int)))
    status = str(item.get("status", "firing")).lower()
    if status not in ("firing", "resolved"):
        raise MappingError(f"{path}.status".lstrip("."), "must be firing or resolved")
    external = str(item.get("external_id", ""))
    return Normalised(
        title=title[:500], severity=severity(item.get("severity")), status=status,
        source=str(item.get("source", "")), external_id=external,
        occurred_at=timestamp(item.get("occurred_at"), f"{path}.occurred_at".lstrip(".")),
        entities=entities(**found), raw=item, dedup_key=(external,) if external else (title,),
    )  # fmt: skip
