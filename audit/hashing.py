"""Canonical JSON and the SHA-256 chain hash of audit events.

The canonical form is RFC 8785-like: keys sorted by UTF-16 code units, no whitespace,
UTF-8 without ASCII escaping, and numbers written so that a value reads back the same
from any backend (PostgreSQL's jsonb returns 1e16 as the integer 10000000000000000 and
-0.0 as 0): integral floats are written as integers, -0 as 0.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

ZERO_HASH: Final = "0" * 64


# Built once: json.dumps with non-default options builds a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical_json(value: Any) -> str:
    """The canonical JSON text of a JSON value (dict, list, str, int, float, bool, None)."""
    return _ENCODER.encode(_canonical(value))


def _canonical(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # the common leaves
        return value
    if isinstance(value, dict):
        keys = list(value)
        # UTF-16 code-unit order is code-point order unless a key holds a character
        # beyond the BMP; ASCII keys (nearly all of them) sort as they are.
        if all(type(k) is str and k.isascii() for k in keys):
            keys.sort()
        else:
            keys.sort(key=_utf16)
        return {k: _canonical(value[k]) for k in keys}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(Decimal(repr(value)))
    return value


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be")


def format_timestamp(moment: datetime) -> str:
    """An aware datetime as UTC ISO 8601 with microseconds, e.g. 2025-01-31T09:15:00.000123Z."""
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    # isoformat with fixed microseconds is the same text as "%Y-%m-%dT%H:%M:%S.%fZ", faster.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def chain_hash(document: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of one event's hashed fields."""
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
