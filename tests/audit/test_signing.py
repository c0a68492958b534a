"""The audit signing key: how it is given, what a bad one says, and rotation."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured

from audit import signing

SEED = bytes(range(32))


@pytest.fixture
def key_settings(settings: Any) -> Any:
    signing.signing_key.cache_clear()
    signing.trusted_public_keys.cache_clear()
    yield settings
    signing.signing_key.cache_clear()
    signing.trusted_public_keys.cache_clear()


@pytest.mark.parametrize(
    "text", [base64.b64encode(SEED).decode(), base64.urlsafe_b64encode(SEED).decode().rstrip("=")]
)
def test_a_seed_in_standard_or_url_safe_base64_is_read(text: str) -> None:
    expected = Ed25519PrivateKey.from_private_bytes(SEED).public_key()
    assert signing.raw_public(
        signing.private_key_from_text(text).public_key()
    ) == signing.raw_public(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!", "is not base64"),
        (
            base64.b64encode(b"short").decode(),
            "must be 32 bytes of base64 (an Ed25519 seed), not 5 bytes",
        ),
    ],
)
def test_a_bad_signing_key_says_what_is_wrong_without_showing_it(
    key_settings: Any, text: str, message: str
) -> None:
    key_settings.BULWARK_AUDIT_SIGNING_KEY = text
    with pytest.raises(ImproperlyConfigured, match="BULWARK_AUDIT_SIGNING_KEY") as error:
        signing.sign(b"x")
    assert message in str(error.value)
    assert text not in str(error.value)


def test_public_keys_are_read_from_pem_or_raw_base64() -> None:
    public = Ed25519PrivateKey.from_private_bytes(SEED).public_key()
    raw = base64.b64encode(signing.raw_public(public)).decode()
    for text in (signing.public_pem(public), raw):
        assert signing.key_id(signing.public_key_from_text(text)) == signing.key_id(public)
    with pytest.raises(signing.BadKey, match=r"not 3 bytes|not base64"):
        signing.public_key_from_text("abcd")


def test_signatures_by_an_earlier_key_still_verify_after_rotation(key_settings: Any) -> None:
    old = Ed25519PrivateKey.generate()
    old_public = base64.b64encode(signing.raw_public(old.public_key())).decode()
    key_settings.BULWARK_AUDIT_SIGNING_KEY = base64.b64encode(SEED).decode()
    key_settings.BULWARK_AUDIT_PREVIOUS_PUBLIC_KEYS = [old_public]
    trusted = signing.trusted_public_keys()
    assert set(trusted) == {
        signing.key_id(signing.current_public_key()),
        signing.key_id(old.public_key()),
    }
    signature = base64.b64encode(old.sign(b"digest")).decode()
    assert signing.signature_holds(trusted[signing.key_id(old.public_key())], b"digest", signature)
    assert not signing.signature_holds(signing.current_public_key(), b"digest", signature)
    assert not signing.signature_holds(signing.current_public_key(), b"digest", "%%%")
