"""Secret redaction for anything that leaves the process: audit payloads, logs, step outputs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

REDACTED: Final = "[redacted]"

# Matched anywhere in a key, case-insensitively, so "X-Api-Key", "client_secret",
# "Proxy-Authorization" and "session_cookie" are all caught. Over-redacting a harmless
# key ("token_count") is the cheap mistake; leaking a credential is not.
SECRET_KEY_PATTERN: Final = re.compile(
    r"pass(?:word|wd|phrase)|secret|token|api[_-]?key|authori[sz]ation|credential"
    r"|private[_-]?key|cookie|session",
    re.IGNORECASE,
)


def is_secret_key(key: object) -> bool:
    """True when a mapping key's name says its value is a secret."""
    return bool(SECRET_KEY_PATTERN.search(str(key)))


def redact(value: Any) -> Any:
    """A copy of `value` with the value of every secret-named key, at any depth, replaced.

    Pure: the argument is not modified. Mappings become dicts, tuples stay tuples, and
    every other value is returned as it is.
    """
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact(item) for item in value)
    return value
