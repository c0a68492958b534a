"""OAuth2 client credentials: one token per connection, cached until shortly before it
expires and shared by every attempt in the process; refreshed once on a 401."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from integrations import http_client
from integrations.context import ActionContext
from integrations.errors import PermanentError

# Renew this long before the vendor says the token expires (vendor-apis.md: expires_in - 60s).
EXPIRY_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class CachedToken:
    access_token: str
    expires_at: float


class TokenCache:
    """Tokens by a key naming the endpoint and the credentials (hashed, never stored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, CachedToken] = {}
        # One fetch at a time per key, so a burst of steps fetches one token, not many.
        self._fetching: dict[str, threading.Lock] = {}

    def get(self, key: str, fetch: Callable[[], tuple[str, float]]) -> str:
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > time.time():
                return cached.access_token
            gate = self._fetching.setdefault(key, threading.Lock())
        with gate:
            with self._lock:  # someone else may have fetched it meanwhile
                cached = self._tokens.get(key)
                if cached and cached.expires_at > time.time():
                    return cached.access_token
            token, lifetime = fetch()
            expires_at = time.time() + max(0.0, lifetime - EXPIRY_MARGIN_SECONDS)
            with self._lock:
                self._tokens[key] = CachedToken(token, expires_at)
            return token

    def invalidate(self, key: str, token: str) -> None:
        """Forget `token` (a 401 said it is no longer good), unless already replaced."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.access_token == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


tokens = TokenCache()


def cache_key(token_url: str, form: Mapping[str, str]) -> str:
    material = token_url + "\0" + "\0".join(f"{k}={form[k]}" for k in sorted(form))
    return hashlib.sha256(material.encode()).hexdigest()


def fetch_token(
    client: httpx.Client,
    ctx: ActionContext,
    token_url: str,
    form: Mapping[str, str],
    *,
    secrets: list[str],
) -> tuple[str, float]:
    """POST the client-credentials form; returns the token and its lifetime in seconds."""
    response = http_client.send(
        client, ctx, "POST", token_url, content=_urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        secrets=secrets,
    )  # fmt: skip
    try:
        body: Any = response.json()
        token, lifetime = str(body["access_token"]), float(body.get("expires_in", 300))
    except (ValueError, KeyError, TypeError):
        raise PermanentError(
            f"the token endpoint {token_url} answered without an access_token", kind="auth"
        ) from None
    return token, lifetime


def _urlencode(form: Mapping[str, str]) -> str:
    return str(httpx.QueryParams(dict(form)))


def bearer_token(
    client: httpx.Client, ctx: ActionContext, *, token_url: str, form: Mapping[str, str],
    secrets: list[str],
) -> str:  # fmt: skip
    """The cached token (fetched when there is none)."""
    key = cache_key(str(client.base_url) + "\0" + token_url, form)
    return tokens.get(key, lambda: fetch_token(client, ctx, token_url, form, secrets=secrets))


def send_authorized(
    client: httpx.Client,
    ctx: ActionContext,
    method: str,
    url: str,
    *,
    token_url: str,
    form: Mapping[str, str],
    secrets: list[str],
    **kwargs: Any,
) -> httpx.Response:
    """Send with the cached bearer token; on a 401, fetch a new token and retry once."""
    key = cache_key(str(client.base_url) + "\0" + token_url, form)
    token = tokens.get(key, lambda: fetch_token(client, ctx, token_url, form, secrets=secrets))
    expect = set(kwargs.pop("expect_status", ())) | {401}
    headers = dict(kwargs.pop("headers", None) or {})
    response = http_client.send(
        client, ctx, method, url, headers={**headers, "Authorization": f"Bearer {token}"},
        expect_status=expect, secrets=[*secrets, token], **kwargs,
    )  # fmt: skip
    if response.status_code != 401:
        return response
    tokens.invalidate(key, token)
    token = tokens.get(key, lambda: fetch_token(client, ctx, token_url, form, secrets=secrets))
    response = http_client.send(
        client, ctx, method, url, headers={**headers, "Authorization": f"Bearer {token}"},
        expect_status=expect - {401}, secrets=[*secrets, token], **kwargs,
    )  # fmt: skip
    return response
