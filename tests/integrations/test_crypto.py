"""Credentials at rest: Fernet with rotation over settings.ENCRYPTION_KEYS."""

from __future__ import annotations

import io
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


@pytest.mark.django_db
def test_rotate_encryption_key_re_encrypts_every_connection_with_the_new_key(settings: Any) -> None:
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from audit.models import AuditEvent
    from integrations.connections import create_connection
    from integrations.models import Connection

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    create_connection(integration="http", name="api", base_url="https://api.example.com",
                      credentials={"token": "tok-123456"}, actor="user:alice")  # fmt: skip
    settings.ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_key", stdout=io.StringIO())
    settings.ENCRYPTION_KEYS = [new]  # the old key can go now
    assert Connection.objects.get(name="api").credentials == {"token": "tok-123456"}
    event = AuditEvent.objects.get(kind="connection.keys_rotated")
    assert event.payload == {"rotated": 1, "unreadable": []}


@pytest.mark.django_db
def test_rotation_names_connections_no_key_can_read(settings: Any) -> None:
    from cryptography.fernet import Fernet
    from django.core.management import CommandError, call_command

    from integrations.connections import create_connection

    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    create_connection(integration="http", name="lost", base_url="https://api.example.com",
                      credentials={"token": "tok-123456"}, actor="user:alice")  # fmt: skip
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="lost"):
        call_command("rotate_encryption_key", stdout=io.StringIO())
