"""The Ed25519 key that signs audit digests and tombstones, and checking signatures.

The private key is a 32-byte seed, base64 (standard or URL-safe), from
`BULWARK_AUDIT_SIGNING_KEY`; development installs keep one under var/. Its public key is
what an auditor is given: `manage.py audit_public_key` prints it, and every signed record
names the key that signed it by `key_id` (the first 16 hex digits of the SHA-256 of the
raw public key), so digests signed before a key rotation still verify against the key
they were signed with (`BULWARK_AUDIT_PREVIOUS_PUBLIC_KEYS`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "Ed25519"


class BadKey(ValueError):
    """A key that cannot be read: wrong encoding, length or type."""


def _decode_base64(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadKey(f"{what} is not base64") from exc


def private_key_from_text(text: str, what: str = "BULWARK_AUDIT_SIGNING_KEY") -> Ed25519PrivateKey:
    """The Ed25519 private key whose 32-byte seed `text` holds in base64."""
    seed = _decode_base64(text, what)
    if len(seed) != 32:
        raise BadKey(f"{what} must be 32 bytes of base64 (an Ed25519 seed), not {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_from_text(text: str, what: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or 32 raw bytes in base64."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(stripped.encode())
        except ValueError as exc:
            raise BadKey(f"{what} is not a readable PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise BadKey(f"{what} is a {type(key).__name__}, not an Ed25519 public key")
        return key
    raw = _decode_base64(stripped, what)
    if len(raw) != 32:
        raise BadKey(f"{what} must be PEM or 32 bytes of base64, not {len(raw)} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


@cache
def signing_key() -> Ed25519PrivateKey:
    """This installation's signing key, from settings."""
    try:
        return private_key_from_text(settings.BULWARK_AUDIT_SIGNING_KEY)
    except BadKey as exc:
        raise ImproperlyConfigured(str(exc)) from None


def current_public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


@cache
def trusted_public_keys() -> dict[str, Ed25519PublicKey]:
    """The keys whose signatures verify here, by key_id: the current one and earlier ones."""
    keys = [current_public_key()]
    for n, text in enumerate(settings.BULWARK_AUDIT_PREVIOUS_PUBLIC_KEYS, start=1):
        try:
            keys.append(public_key_from_text(text, f"BULWARK_AUDIT_PREVIOUS_PUBLIC_KEYS item {n}"))
        except BadKey as exc:
            raise ImproperlyConfigured(str(exc)) from None
    return {key_id(key): key for key in keys}


def sign(message: bytes) -> str:
    """The base64 Ed25519 signature of `message` with this installation's key."""
    return base64.b64encode(signing_key().sign(message)).decode()


def signature_holds(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is `key`'s signature of `message`."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
