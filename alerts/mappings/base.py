"""The normalised alert every mapping produces, and the helpers they share."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


def epoch(seconds: float, path: str) -> datetime:
    """A time given as seconds since 1970 (MappingError when no calendar holds it)."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise MappingError(path, f"not a time: {seconds!r}") from None


def entities(**found: list[Any]) -> dict[str, list[str]]:
    """De-duplicated, ordered entity lists; IPs validated, everything else as text. A list
    (ECS `host.ip` often is one) gives each of its values; objects and booleans give none."""
    out: dict[str, list[str]] = {}
    for kind in ENTITY_KINDS:
        values = [v for v in (s.strip() for s in _texts(found.get(kind, []))) if v]
        if kind == "ips":
            values = [v for v in values if _is_ip(v)]
        if values:
            out[kind] = list(dict.fromkeys(values))
    return out


def _texts(values: Any) -> list[str]:
    if isinstance(values, list):
        return [text for value in values for text in _texts(value)]
    if isinstance(values, str):
        return [values]
    if isinstance(values, int | float) and not isinstance(values, bool):
        return [str(values)]
    return []


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


def section(obj: dict[str, Any], key: str, path: str = "") -> dict[str, Any]:
    """An optional object: {} when absent or null, a MappingError when it is not one."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{path}.{key}" if path else key, "must be an object")
    return value


def objects(obj: dict[str, Any], key: str, path: str = "") -> list[dict[str, Any]]:
    """An optional list of objects: [] when absent or null, else each must be an object."""
    where = f"{path}.{key}" if path else key
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(where, "must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise MappingError(f"{where}[{i}]", "must be an object")
    return value


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {str: "text", list: "a list", dict: "an object", int: "a number"}.get(k, k.__name__)
        for k in kinds
    )
