"""Operations on connections: create, update, delete (each audited) and resolve for a step."""

from __future__ import annotations

import re
from typing import Any

import httpx
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from audit.events import record_event
from integrations.context import ConnectionInfo
from integrations.crypto import DecryptionError
from integrations.models import Connection

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
INTEGRATION_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
BASE_URL_SCHEMES = frozenset({"http", "https"})
MAX_BASE_URL_LENGTH = 2048


class ConnectionInvalid(ValueError):
    """A connection field has a bad value; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ConnectionExists(ConnectionInvalid):
    """Another connection already has this name."""

    def __init__(self, name: str) -> None:
        super().__init__("name", f"a connection named {name!r} already exists")


class ConnectionLookupError(LookupError):
    """A step's connection cannot be determined."""


class UnknownConnection(ConnectionLookupError):
    """No connection has the given name (for the given integration)."""


class AmbiguousConnection(ConnectionLookupError):
    """Several connections of the integration exist and the step names none."""


def validate_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ConnectionInvalid(
            "name",
            "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )


def validate_integration(integration: str) -> None:
    if not isinstance(integration, str) or not INTEGRATION_RE.fullmatch(integration):
        raise ConnectionInvalid(
            "integration", "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter"
        )


# Mail is sent over SMTP; every other integration speaks HTTP.
MAIL_SCHEMES = frozenset({"smtp", "smtps"})


def validate_base_url(base_url: str, integration: str = "") -> None:
    """An absolute http(s) URL (smtp:// or smtps:// for email) with a host, and no user
    info, query or fragment."""
    schemes = MAIL_SCHEMES if integration == "email" else BASE_URL_SCHEMES
    problem = None
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or len(base_url) > MAX_BASE_URL_LENGTH:
        problem = "not a valid URL"
    elif url.scheme not in schemes or not url.host:
        problem = f"must be an absolute {' or '.join(sorted(f'{s}://' for s in schemes))} URL"
    elif url.userinfo:
        problem = "must not contain user information; put it in credentials"
    elif url.query or url.fragment:
        problem = "must not contain a query or fragment; put secrets in credentials"
    if problem:
        raise ConnectionInvalid("base_url", problem)


LIMIT_FIELDS = ("rate_limit_per_minute", "circuit_failures", "circuit_cooldown_seconds")
_LIMIT_RANGES: dict[str, tuple[float, float]] = {
    "rate_limit_per_minute": (1, 100_000),
    "circuit_failures": (1, 1000),
    "circuit_cooldown_seconds": (1, 86_400),
}


def validate_limits(limits: dict[str, Any]) -> None:
    """Rate limit and circuit settings within sensible bounds (rate limit None: unlimited)."""
    for name, value in limits.items():
        low, high = _LIMIT_RANGES[name]
        if value is None and name == "rate_limit_per_minute":
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ConnectionInvalid(name, f"must be a number from {low:g} to {high:g}")


MAX_OPTIONS = 50


def validate_options(options: Any) -> None:
    """Plain settings: an object of at most MAX_OPTIONS string keys and scalar values."""
    scalars = (str, int, float, bool, type(None))
    if (
        not isinstance(options, dict)
        or len(options) > MAX_OPTIONS
        or not all(isinstance(k, str) and isinstance(v, scalars) for k, v in options.items())
    ):
        raise ConnectionInvalid(
            "options",
            f"must be an object of up to {MAX_OPTIONS} keys with text, number or boolean values",
        )


def validate_credentials(credentials: Any) -> None:
    if not isinstance(credentials, dict) or not all(isinstance(k, str) for k in credentials):
        raise ConnectionInvalid("credentials", "must be an object with string keys")


def _keys_changed(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Which credential keys were added, removed or given a new value: names, never values."""
    if old is None:  # the old value could not be decrypted: everything is new
        return {"auth_fields_set": sorted(new), "auth_fields_previous_unreadable": True}
    return {
        "auth_fields_added": sorted(set(new) - set(old)),
        "auth_fields_removed": sorted(set(old) - set(new)),
        "auth_fields_changed": sorted(k for k in set(old) & set(new) if old[k] != new[k]),
    }


def _describe(connection: Connection) -> dict[str, Any]:
    # Key names chosen so audit redaction (which hides "credential…" keys) leaves them be.
    return {
        "connection": connection.name,
        "integration": connection.integration,
        "base_url": connection.base_url,
        "allow_private_network": connection.allow_private_network,
        "options": connection.options,
        **{name: getattr(connection, name) for name in LIMIT_FIELDS},
    }


def create_connection(
    *,
    integration: str,
    name: str,
    base_url: str,
    credentials: dict[str, Any],
    allow_private_network: bool = False,
    actor: str,
    user: User | None = None,
    options: dict[str, Any] | None = None,
    **limits: Any,
) -> Connection:
    """Store a new connection with encrypted credentials, and audit it. `limits` may set
    rate_limit_per_minute, circuit_failures and circuit_cooldown_seconds."""
    validate_integration(integration)
    validate_name(name)
    validate_base_url(base_url, integration)
    validate_credentials(credentials)
    validate_options(options or {})
    validate_limits(limits)
    connection = Connection(
        integration=integration,
        name=name,
        base_url=base_url,
        allow_private_network=allow_private_network,
        created_by=user,
        options=options or {},
        **limits,
    )
    connection.credentials = credentials
    try:
        with transaction.atomic():
            if Connection.objects.filter(name=name).exists():
                raise ConnectionExists(name)
            connection.save()
            record_event(
                stream="system",
                kind="connection.created",
                actor=actor,
                payload={**_describe(connection), "auth_fields_set": sorted(credentials)},
            )
    except IntegrityError:
        raise ConnectionExists(name) from None
    return connection


def update_connection(
    *,
    connection: Connection,
    actor: str,
    base_url: str | None = None,
    credentials: dict[str, Any] | None = None,
    allow_private_network: bool | None = None,
    options: dict[str, Any] | None = None,
    **limits: Any,
) -> Connection:
    """Change a connection's base_url, flag, limits or credentials (a field not given, or
    None except for rate_limit_per_minute, stays as it is).

    New credentials replace the stored ones entirely. The audit event says which fields
    and which credential keys changed.
    """
    if base_url is not None:
        validate_base_url(base_url, connection.integration)
    if credentials is not None:
        validate_credentials(credentials)
    validate_limits(limits)
    if options is not None:
        validate_options(options)
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        changed: dict[str, Any] = {}
        if options is not None and options != locked.options:
            changed["options_before"] = locked.options
            locked.options = options
        for name, value in limits.items():
            if getattr(locked, name) != value:
                changed[f"{name}_before"] = getattr(locked, name)
                setattr(locked, name, value)
        if base_url is not None and base_url != locked.base_url:
            changed["base_url_before"] = locked.base_url
            locked.base_url = base_url
        if (
            allow_private_network is not None
            and allow_private_network != locked.allow_private_network
        ):
            changed["allow_private_network_before"] = locked.allow_private_network
            locked.allow_private_network = allow_private_network
        if credentials is not None:
            try:
                old: dict[str, Any] | None = locked.credentials
            except DecryptionError:
                old = None
            keys = _keys_changed(old, credentials)
            if old is None or any(keys.values()):
                changed.update(keys)
                locked.credentials = credentials
        if changed:
            locked.save()
            record_event(
                stream="system",
                kind="connection.updated",
                actor=actor,
                payload={**_describe(locked), **changed},
            )
    return locked


def delete_connection(*, connection: Connection, actor: str) -> None:
    """Delete a connection, and audit it."""
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        payload = _describe(locked)
        locked.delete()
        record_event(stream="system", kind="connection.deleted", actor=actor, payload=payload)


def resolve_connection(*, integration: str, name: str | None) -> ConnectionInfo | None:
    """The connection a step uses: the named one, else the only one of its integration.

    None when the step names none and the integration has none; raises
    `ConnectionLookupError` when the name is unknown or several exist and none is named.
    """
    if name is not None:
        found = Connection.objects.filter(name=name).first()
        if found is None:
            raise UnknownConnection(f"no connection named {name!r}")
        if found.integration != integration:
            raise UnknownConnection(
                f"connection {name!r} is for {found.integration}, not {integration}"
            )
        return found.to_info()
    candidates = list(Connection.objects.filter(integration=integration)[:2])
    if not candidates:
        return None
    if len(candidates) > 1:
        raise AmbiguousConnection(
            f"several {integration} connections exist; name one with `connection:`"
        )
    return candidates[0].to_info()


def connection_names() -> set[tuple[str, str]]:
    """Every (integration, name) pair, for the playbook validator."""
    return set(Connection.objects.values_list("integration", "name"))


def test_connection(*, connection: Connection, actor: str) -> dict[str, Any]:
    """Probe the connection (integrations.probes) and audit that it was tested."""
    from integrations.probes import probe_connection

    try:
        info = connection.to_info()
    except DecryptionError as exc:
        result: dict[str, Any] = {"ok": False, "message": str(exc)}
    else:
        result = probe_connection(info)
    with transaction.atomic():
        record_event(stream="system", kind="connection.tested", actor=actor,
                     payload={**_describe(connection), "ok": result["ok"], "message": result["message"]})  # fmt: skip
    return result


def rotate_credentials(*, actor: str) -> tuple[int, list[str]]:
    """Re-encrypt every connection's credentials with the first configured key (after a
    new key was put first in BULWARK_ENCRYPTION_KEY). Returns how many were rotated and
    the names of those no configured key can decrypt (left untouched). Audited."""
    from integrations.crypto import rotate_json

    rotated, unreadable = 0, []
    with transaction.atomic():
        for connection in Connection.objects.select_for_update().exclude(credentials_encrypted=""):
            try:
                connection.credentials_encrypted = rotate_json(connection.credentials_encrypted)
            except DecryptionError:
                unreadable.append(connection.name)
                continue
            connection.save(update_fields=["credentials_encrypted", "updated_at"])
            rotated += 1
        record_event(stream="system", kind="connection.keys_rotated", actor=actor,
                     payload={"rotated": rotated, "unreadable": unreadable})  # fmt: skip
    return rotated, unreadable
