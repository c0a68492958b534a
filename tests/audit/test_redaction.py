"""Secrets never reach the audit trail (or logs and outputs that reuse redact)."""

from __future__ import annotations

import copy

import pytest

from audit.redaction import REDACTED, is_secret_key, redact


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_passwd",
        "client_secret",
        "access_token",
        "api_key",
        "X-Api-Key",
        "apikey",
        "Authorization",
        "Proxy-Authorization",
        "credentials",
        "credential",
        "private_key",
        "Set-Cookie",
        "session",
        "SESSION_ID",
    ],
)
def test_secret_looking_keys_are_recognised(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["host", "user", "author", "comment", "status_code", "key_id"])
def test_ordinary_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


def test_secret_keys_are_redacted_at_any_depth() -> None:
    value = {
        "host": "ws-042",
        "request": {
            "headers": [{"Authorization": "Bearer abc"}, {"Accept": "application/json"}],
            "auth": {"username": "svc", "password": "hunter2", "nested": {"api_key": "k"}},
        },
        "token": {"not": "even a string"},
    }
    assert redact(value) == {
        "host": "ws-042",
        "request": {
            "headers": [{"Authorization": REDACTED}, {"Accept": "application/json"}],
            "auth": {"username": "svc", "password": REDACTED, "nested": {"api_key": REDACTED}},
        },
        "token": REDACTED,
    }


def test_redact_leaves_its_argument_unchanged() -> None:
    value = {"secret": "s", "items": [{"token": "t"}], "pair": ("a", {"cookie": "c"})}
    before = copy.deepcopy(value)
    result = redact(value)
    assert value == before
    assert result["pair"] == ("a", {"cookie": REDACTED})


def test_values_that_merely_mention_secrets_are_kept() -> None:
    assert redact({"note": "password reset requested"}) == {"note": "password reset requested"}
