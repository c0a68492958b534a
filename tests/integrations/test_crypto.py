"""Credentials at rest: Fernet with rotation over settings.ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from integrations.crypto import DecryptionError, decrypt_json, encrypt_json, rotate_json

CREDS = {"token": "tok-SECRET-1", "headers": {"X-Api-Key": "k-2"}}


def test_credentials_round_trip_and_are_not_stored_in_clear(encryption_keys: list[str]) -> None:
    token = encrypt_json(CREDS)
    assert "tok-SECRET-1" not in token
    assert decrypt_json(token) == CREDS


def test_a_new_first_key_still_decrypts_what_the_old_key_encrypted(
    settings: Any, encryption_keys: list[str]
) -> None:
    old_token = encrypt_json(CREDS)
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, *encryption_keys]
    assert decrypt_json(old_token) == CREDS
    rotated = rotate_json(old_token)
    settings.ENCRYPTION_KEYS = [new_key]
    assert decrypt_json(rotated) == CREDS
    with pytest.raises(DecryptionError):
        decrypt_json(old_token)


def test_a_wrong_key_fails_clearly_without_echoing_ciphertext_or_plaintext(
    settings: Any, encryption_keys: list[str]
) -> None:
    token = encrypt_json(CREDS)
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError, match="cannot be decrypted") as caught:
        decrypt_json(token)
    assert token not in str(caught.value)
    assert "tok-SECRET-1" not in str(caught.value)


def test_a_malformed_key_is_a_configuration_error_that_hides_the_key(settings: Any) -> None:
    settings.ENCRYPTION_KEYS = ["not-a-fernet-key-but-a-secret"]
    with pytest.raises(ImproperlyConfigured) as caught:
        encrypt_json(CREDS)
    assert "not-a-fernet-key-but-a-secret" not in str(caught.value)
