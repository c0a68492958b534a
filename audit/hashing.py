"""Canonical JSON and the SHA-256 chain hash of audit events.

The canonical form is RFC 8785-like: keys sorted by UTF-16 code units, no whitespace,
UTF-8 without ASCII escaping, and numbers written so that a value reads back the same
from any backend (PostgreSQL's jsonb returns 1e16 as the integer 10000000000000000 and
-0.0 as 0): integral floats are written as integers, -0 as 0.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import orjson

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
    if moment.tzinfo is UTC:  # as the database returns them: no conversion needed
        return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    # isoformat with fixed microseconds is the same text as "%Y-%m-%dT%H:%M:%S.%fZ", faster.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def chain_hash(document: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of one event's hashed fields."""
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


# Verifying reads the payload as the JSON text the database holds and hashes it without
# building Python objects twice: parsed by the C decoder (integral numbers as ints, as the
# canonical form writes them) and encoded by the C encoder with sorted keys. Sorting by
# code point is the canonical UTF-16 order unless a key holds a character beyond the
# BMP; a payload that might (such a character, or a surrogate escape) takes the general
# path instead.
def _sorted_encoder() -> Callable[[Any], str]:
    """json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":")), made once.

    JSONEncoder.encode builds a new C encoder on every call; the C encoder is built here
    once instead (without the circular-reference check: payloads come from JSON)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:  # no C accelerator: the pure-Python encoder
        return json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True
        ).encode

    def refuse(value: Any) -> Any:
        raise TypeError(f"{type(value).__name__} is not a JSON value")

    chunks = make(None, refuse, basestring, None, ":", ",", True, False, False)
    return lambda value: "".join(chunks(value, 0))


_SORTED_ENCODE: Final = _sorted_encoder()
_STRING: Final[Callable[[str], str]] = getattr(json.encoder, "c_encode_basestring", None) or (
    json.encoder.py_encode_basestring
)
_DECODER: Final = json.JSONDecoder(parse_float=lambda text: _number(text))
# The C scanner itself: JSONDecoder.decode wraps it in two whitespace matches the stored
# text (no surrounding space) does not need, and that costs more than the hash.
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]
_BEYOND_BMP: Final = re.compile(r"\\u[dD][89abAB]|[\U00010000-\U0010FFFF]")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89abAB]")


def _beyond_bmp(text: str) -> bool:
    """Whether the JSON text may hold a character beyond the BMP: one written out, or a
    surrogate escape (SQLite stores JSON ASCII-escaped; PostgreSQL writes characters)."""
    if text.isascii():
        return "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
    return _BEYOND_BMP.search(text) is not None


def _decode(text: str) -> Any:
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # leading space, or not JSON: the full decoder says which
        return _DECODER.decode(text)
    return value if end == len(text) else _DECODER.decode(text)


def _number(text: str) -> int | float:
    value = float(text)
    if math.isfinite(value) and value.is_integer():
        return int(Decimal(repr(value)))
    return value


def _text(value: str | None) -> str:
    return "null" if value is None else _STRING(value)


# orjson parses and writes a payload in one pass each, about twice as fast as the
# standard library, and writes the canonical form itself: compact, UTF-8, keys sorted by
# code point, the same escapes. It differs only where a payload holds a float (its own
# float text; the canonical form writes integral floats as integers), an integer beyond
# 64 bits (which it reads as a float) or a character beyond the BMP (code-point order is
# not UTF-16 order there): such text, and anything it refuses, takes the general path.
# A float literal always has a digit just before its "." or exponent, and an integer
# beyond 64 bits has at least 19 digits, so these patterns miss none (they also match
# some strings, which merely take the general path).
_NOT_FOR_ORJSON: Final = re.compile(r"[0-9](?:[.eE]|[0-9]{18})")
_SORTED: Final = orjson.OPT_SORT_KEYS


def event_hash(*, stream: str, seq: int, created_at: str, actor: str, kind: str,
               run_id: int | None, step_id: str | None, playbook: str | None,
               payload_text: str, prev_hash: str) -> str:  # fmt: skip
    """chain_hash of an event's hashed fields, its payload given as stored JSON text.

    This runs for every event verified, so it takes the fastest path the text allows;
    every path gives the text canonical_json gives for the document."""
    if not _beyond_bmp(payload_text) and _NOT_FOR_ORJSON.search(payload_text) is None:
        try:
            document = {"actor": actor, "created_at": created_at, "kind": kind,
                        "payload": orjson.loads(payload_text), "playbook": playbook,
                        "prev_hash": prev_hash, "run_id": run_id, "seq": seq,
                        "step_id": step_id, "stream": stream}  # fmt: skip
            return hashlib.sha256(orjson.dumps(document, option=_SORTED)).hexdigest()
        except (ValueError, TypeError):  # not JSON it reads, or a lone surrogate in a field
            pass
    return _general_event_hash(stream=stream, seq=seq, created_at=created_at, actor=actor,
                               kind=kind, run_id=run_id, step_id=step_id, playbook=playbook,
                               payload_text=payload_text, prev_hash=prev_hash)  # fmt: skip


def _general_event_hash(*, stream: str, seq: int, created_at: str, actor: str, kind: str,
                        run_id: int | None, step_id: str | None, playbook: str | None,
                        payload_text: str, prev_hash: str) -> str:  # fmt: skip
    """event_hash by the standard library, for any payload: the fields written out one by
    one in the canonical key order (building and sorting a dict costs more)."""
    if payload_text == "{}":
        payload = "{}"
    elif _beyond_bmp(payload_text):
        payload = canonical_json(json.loads(payload_text))
    else:
        payload = _SORTED_ENCODE(_decode(payload_text))
    run = "null" if run_id is None else str(run_id)
    text = (f'{{"actor":{_STRING(actor)},"created_at":"{created_at}","kind":{_STRING(kind)},'
            f'"payload":{payload},"playbook":{_text(playbook)},"prev_hash":"{prev_hash}",'
            f'"run_id":{run},"seq":{seq},"step_id":{_text(step_id)},"stream":{_STRING(stream)}}}')  # fmt: skip
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
