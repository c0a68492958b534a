"""`http.request`: the generic HTTP action, optionally through an `http` connection."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import httpx

from integrations import health, http_client
from integrations.context import ActionContext, ConnectionInfo
from integrations.errors import ActionError, PermanentError
from integrations.netguard import ALLOWED_SCHEMES
from integrations.probes import prober
from integrations.registry import action

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Step outputs stay small; the full body is never needed twice (json and text).
MAX_TEXT_CHARS = 64 * 1024
TRUNCATED = "…[truncated]"


def _credentials(connection: ConnectionInfo) -> tuple[dict[str, str], httpx.Auth | None]:
    """Headers and auth from the connection's credentials (token, username/password, headers)."""
    creds = connection.credentials
    headers = {str(k): str(v) for k, v in (creds.get("headers") or {}).items()}
    auth: httpx.Auth | None = None
    if creds.get("token"):
        headers["Authorization"] = f"Bearer {creds['token']}"
    elif creds.get("username") is not None and creds.get("password") is not None:
        auth = httpx.BasicAuth(str(creds["username"]), str(creds["password"]))
    return headers, auth


def _target(url: str, connection: ConnectionInfo | None) -> str:
    """Check that `url` is absolute, or relative to the connection and within its origin."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PermanentError(f"invalid url: {exc}", kind="validation") from None
    if parsed.scheme and parsed.scheme not in ALLOWED_SCHEMES:
        raise PermanentError(
            f"refusing the {parsed.scheme}: scheme: only http and https are allowed", kind="ssrf"
        )
    if connection is None:
        if not parsed.is_absolute_url:
            raise PermanentError(
                "url must be absolute (http:// or https://) when the step names no connection",
                kind="validation",
            )
        return url
    if parsed.is_absolute_url:
        base = httpx.URL(connection.base_url)
        if (parsed.scheme, parsed.host, parsed.port) != (base.scheme, base.host, base.port):
            # The connection's credentials must never travel to a host the step chose.
            raise PermanentError(
                f"url {parsed.copy_with(query=None)} is outside connection "
                f"{connection.name!r} ({connection.base_url}); use a path relative to it",
                kind="validation",
            )
    return url


def _output(response: httpx.Response, secrets: list[str]) -> dict[str, Any]:
    text = response.text
    try:
        body = response.json() if text.strip() else None
    except ValueError:
        body = None
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + TRUNCATED
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    output = {
        "status_code": response.status_code,
        "headers": headers,
        "json": body,
        # The body once: as JSON when it parsed, otherwise as text.
        "text": None if body is not None else text,
    }
    redacted: dict[str, Any] = http_client.redact(output, secrets)
    return redacted


def http_request(
    ctx: ActionContext,
    *,
    method: Method = "GET",
    url: str,
    # Mutable defaults are safe here: pydantic copies them for every validation.
    headers: dict[str, str] = {},  # noqa: B006
    params: dict[str, str | int | float | bool] = {},  # noqa: B006
    json: Any = None,
    body: str | None = None,
    expect_status: list[int] | None = None,
) -> dict[str, Any]:
    """Send an HTTP request and return its status, headers and body (as JSON when it is JSON).

    `url` is absolute, or relative to the connection's base_url. With a connection, its
    credentials apply: `token` as a bearer token, `username`/`password` as basic auth,
    `headers` as extra headers. Internal addresses are refused unless the connection sets
    `allow_private_network`. A status other than 2xx fails unless listed in `expect_status`.
    """
    if json is not None and body is not None:
        raise PermanentError("give either json or body, not both", kind="validation")
    connection = ctx.connection
    secrets = http_client.credential_secrets(connection.credentials) if connection else []
    target = _target(url, connection)
    auth_headers, auth = _credentials(connection) if connection else ({}, None)
    if connection:
        health.admit(ctx, connection)
    try:
        with http_client.build_client(
            ctx,
            base_url=connection.base_url if connection else None,
            allow_private_network=connection.allow_private_network if connection else False,
            headers=auth_headers,
            auth=auth,
        ) as client:
            response = http_client.send(
                client,
                ctx,
                method,
                target,
                params={k: _param(v) for k, v in params.items()},
                headers=headers,
                json=json,
                content=body,
                expect_status=expect_status or (),
                secrets=secrets,
            )
    except ActionError as error:
        if connection:
            health.record_failure(connection, error)
        raise http_client.redact_error(error, secrets) from None
    if connection:
        health.record_success(connection)
    return _output(response, secrets)


# The input's public name is `json`; pydantic warns that the field shadows the deprecated
# BaseModel.json() method, which nothing calls on an input model.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)
    action(
        "http.request",
        plan="send {method} {url}",
        reads_with=lambda inputs: inputs.get("method", "GET") in ("GET", "HEAD"),
        side_effect="write",
        idempotent=True,
        connection="http",
        connection_required=False,
        output="`status_code`, `headers`, `json` (the body when it is JSON) or `text`",
    )(http_request)


def _param(value: str | int | float | bool) -> str:
    # Booleans as JSON spells them, not Python's "True".
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@prober("http")
def check_connection(ctx: ActionContext) -> str:
    """The base URL answers (any status below 500 counts: the server is there)."""
    output = http_request(ctx, method="GET", url=ctx.connection.base_url if ctx.connection else "",
                          expect_status=list(range(300, 500)))  # fmt: skip
    return (
        f"{ctx.connection.base_url if ctx.connection else ''} answered HTTP {output['status_code']}"
    )
