"""The normalised alert every mapping produces, and the helpers they share."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

# One severity scale for every source.
SEVERITIES = ("info", "low", "medium", "high", "critical")
_SYNONYMS = {"informational": "info", "information": "info", "warning": "medium", "warn": "medium",
             "moderate": "medium", "error": "high", "major": "high", "page": "high", "minor": "low",
             "fatal": "critical", "emergency": "critical", "disaster": "critical", "none": "info"}  # fmt: skip
ENTITY_KINDS = ("hosts", "users", "ips", "hashes", "urls", "domains")


class MappingError(ValueError):
    """The payload does not have the shape its format promises; `path` says where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Normalised:
    title: str
    severity: str
    status: str  # firing | resolved
    source: str
    external_id: str
    occurred_at: datetime | None
    entities: dict[str, list[str]]
    raw: Any
    # What makes two deliveries the same alert (before the source's own dedup keys).
    dedup_key: tuple[str, ...] = field(default=())


def severity(value: Any, default: str = "medium") -> str:
    text = str(value or "").strip().lower()
    if text in SEVERITIES:
        return text
    return _SYNONYMS.get(text, default)


def timestamp(value: Any, path: str) -> datetime | None:
    if value in (None, "", "0001-01-01T00:00:00Z"):
        return None
    parsed = parse_datetime(str(value)) if isinstance(value, str) else None
    if parsed is None:
        raise MappingError(path, f"not an RFC 3339 time: {value!r}")
    return parsed


def entities(**found: list[Any]) -> dict[str, list[str]]:
    """De-duplicated, ordered entity lists; IPs validated, everything else as text."""
    out: dict[str, list[str]] = {}
    for kind in ENTITY_KINDS:
        values = [str(v).strip() for v in found.get(kind, []) if v not in (None, "")]
        if kind == "ips":
            values = [v for v in values if _is_ip(v)]
        if values:
            out[kind] = list(dict.fromkeys(values))
    return out


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def require(obj: Any, key: str, path: str, kind: type | tuple[type, ...] = str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise MappingError(f"{path}.{key}" if path else key, "is required")
    if not isinstance(obj[key], kind):
        raise MappingError(f"{path}.{key}" if path else key, f"must be {_name(kind)}")
    return obj[key]


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {str: "text", list: "a list", dict: "an object", int: "a number"}.get(k, k.__name__)
        for k in kinds
    )
