"""Checking who sent a delivery, per the source's scheme; every comparison constant-time.

Secrets come as {"current": …, "previous": …}: either one is accepted, so a sender can be
moved to a new secret without dropping deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook

# Standard Webhooks' own tolerance; the library refuses timestamps outside it.
REPLAY_WINDOW_SECONDS = 300


class Unauthenticated(Exception):
    """The delivery's credentials or signature do not check out (the reason, never a secret)."""


def _candidates(secrets: Mapping[str, Any]) -> list[str]:
    return [str(s) for s in (secrets.get("current"), secrets.get("previous")) if s]


def verify(
    auth: str,
    secrets: Mapping[str, Any],
    headers: Mapping[str, str],
    body: bytes,
    options: Mapping[str, Any] | None = None,
    url_token: str = "",
) -> str | None:
    """Raise Unauthenticated unless the delivery is authentic; return the sender's delivery
    id when the scheme carries one (Standard Webhooks' webhook-id). `url_token` is the
    hook URL's `token` query parameter."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if auth == "grafana":
        _grafana(secrets, lowered, body, options or {})
        return None
    if auth == "standard_webhooks":
        return _standard_webhooks(secrets, lowered, body)
    if auth == "github":
        signature = lowered.get("x-hub-signature-256", "")
        for secret in _candidates(secrets):
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected.encode(), signature.encode()):
                return lowered.get("x-github-delivery") or None
        raise Unauthenticated("X-Hub-Signature-256 missing or wrong")
    if auth == "bearer":
        scheme, _, token = lowered.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _matches(token, secrets):
            return None
        raise Unauthenticated("bearer token missing or wrong")
    if auth == "basic":
        scheme, _, encoded = lowered.get("authorization", "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            given = ""
        if scheme.lower() == "basic" and _matches(given, secrets):
            return None
        raise Unauthenticated("basic credentials missing or wrong")
    if auth == "url_token":
        if url_token and _matches(url_token, secrets):
            return None
        raise Unauthenticated("URL token missing or wrong")
    raise Unauthenticated(f"unknown authentication scheme {auth!r}")


def _matches(given: str, secrets: Mapping[str, Any]) -> bool:
    # Every candidate is compared, so the time taken does not tell which one matched.
    results = [
        hmac.compare_digest(given.encode(), secret.encode()) for secret in _candidates(secrets)
    ]
    return any(results)


def _standard_webhooks(secrets: Mapping[str, Any], headers: Mapping[str, str], body: bytes) -> str:
    for secret in _candidates(secrets):
        try:
            Webhook(secret).verify(body, dict(headers), json_parse=False)
        except Exception:  # noqa: S112 - malformed headers, a stale timestamp, a wrong signature: try the next
            continue
        return headers["webhook-id"]
    raise Unauthenticated(
        "Standard Webhooks signature missing, wrong, or outside the 5-minute window"
    )


def _grafana(secrets: Mapping[str, Any], headers: Mapping[str, str], body: bytes,
             options: Mapping[str, Any]) -> None:  # fmt: skip
    """Grafana 12+: lowercase hex HMAC-SHA256 of the body, or of `timestamp:body` when a
    timestamp header is configured (then it must be within the replay window)."""
    import time

    signature = headers.get(
        str(options.get("signature_header", "X-Grafana-Alerting-Signature")).lower(), ""
    )
    message = body
    if options.get("timestamp_header"):
        stamp = headers.get(str(options["timestamp_header"]).lower(), "")
        try:
            fresh = abs(time.time() - float(stamp)) <= REPLAY_WINDOW_SECONDS
        except ValueError:
            fresh = False
        if not fresh:
            raise Unauthenticated("Grafana timestamp missing or outside the 5-minute window")
        message = stamp.encode() + b":" + body
    results = [
        hmac.compare_digest(
            hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode(),
            signature.encode(),
        )
        for secret in _candidates(secrets)
    ]
    if not any(results):
        raise Unauthenticated("Grafana alerting signature missing or wrong")
