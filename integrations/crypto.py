"""Encryption at rest for connection credentials: Fernet over settings.ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so a key is rotated by putting the new one
first and keeping the old one until `rotate_json` has re-encrypted everything.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """Stored credentials cannot be decrypted with any configured key."""


def _fernet() -> MultiFernet:
    keys = list(settings.ENCRYPTION_KEYS)
    if not keys:
        raise ImproperlyConfigured("BULWARK_ENCRYPTION_KEY is empty: no key to encrypt with")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError):
        # The message must not echo the key.
        raise ImproperlyConfigured(
            "BULWARK_ENCRYPTION_KEY holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from None


def encrypt_json(value: dict[str, Any]) -> str:
    """Encrypt a JSON-serialisable dict with the first key."""
    plaintext = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return _fernet().encrypt(plaintext).decode("ascii")


def decrypt_json(token: str) -> dict[str, Any]:
    """Decrypt what `encrypt_json` produced, with whichever configured key fits."""
    try:
        plaintext = _fernet().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise DecryptionError(
            "stored credentials cannot be decrypted with any configured encryption key "
            "(was BULWARK_ENCRYPTION_KEY changed without keeping the old key?)"
        ) from None
    value = json.loads(plaintext)
    if not isinstance(value, dict):
        raise DecryptionError("stored credentials are not a JSON object")
    return value


def rotate_json(token: str) -> str:
    """Re-encrypt `token` with the first key (for key rotation)."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError):
        raise DecryptionError(
            "stored credentials cannot be decrypted with any configured encryption key"
        ) from None
