"""The base of every vendor client: its connection, its httpx client, its secrets.

Subclasses say how the vendor authenticates (`auth_headers`, or `authorize` for OAuth)
and add one method per API call they need. Every request goes through the shared HTTP
layer (`http_client.send`), so timeouts, the SSRF guard, retry classification,
`Retry-After` and redaction are the same for every vendor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from integrations import health, http_client, oauth
from integrations.context import ActionContext, ConnectionInfo
from integrations.errors import ActionError, PermanentError


def require_connection(ctx: ActionContext, integration: str) -> ConnectionInfo:
    if ctx.connection is None:
        raise PermanentError(
            f"this step needs a {integration} connection: create one, or name it with `connection:`",
            kind="connection",
        )
    return ctx.connection


def credential(connection: ConnectionInfo, name: str) -> str:
    """A required credential field, as text."""
    value = connection.credentials.get(name)
    if value is None or value == "":
        raise PermanentError(
            f"connection {connection.name!r} has no `{name}` in its credentials", kind="connection"
        )
    return str(value)


class VendorAPI:
    """One attempt's session with a vendor; use as a context manager."""

    integration: ClassVar[str]

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.connection = require_connection(ctx, self.integration)
        self.secrets = http_client.credential_secrets(self.connection.credentials)
        health.admit(ctx, self.connection)  # an open circuit or a spent rate limit: wait
        self.client = http_client.build_client(
            ctx,
            base_url=self.connection.base_url,
            allow_private_network=self.connection.allow_private_network,
            headers=self.auth_headers(),
            auth=self.basic_auth(),
        )

    def auth_headers(self) -> dict[str, str]:
        """Headers that carry the credentials on every request (dropped on other origins)."""
        return {}

    def basic_auth(self) -> httpx.BasicAuth | None:
        return None

    def oauth_token_request(self) -> tuple[str, dict[str, str]] | None:
        """(token URL, client-credentials form) for vendors that use OAuth2, else None."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.client.close()
        if isinstance(exc, ActionError):
            http_client.redact_error(exc, self.secrets)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request to the vendor (`path` relative to the connection's base URL);
        its outcome counts toward the connection's circuit breaker."""
        try:
            response = self._send(method, path, **kwargs)
        except ActionError as error:
            health.record_failure(self.connection, error)
            raise
        health.record_success(self.connection)
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token_request = self.oauth_token_request()
        if token_request is None:
            return http_client.send(
                self.client, self.ctx, method, path, secrets=self.secrets, **kwargs
            )
        token_url, form = token_request
        return oauth.send_authorized(
            self.client, self.ctx, method, path, token_url=token_url, form=form,
            secrets=self.secrets, **kwargs,
        )  # fmt: skip

    def download[T](self, path: str, consume: Callable[[httpx.Response, Iterator[bytes]], T], *,
                 params: Mapping[str, Any] | None = None) -> T:  # fmt: skip
        """Stream a file from the vendor into `consume` (see http_client.download)."""
        headers: dict[str, str] = {}
        secrets = list(self.secrets)
        token_request = self.oauth_token_request()
        if token_request is not None:
            token = oauth.bearer_token(self.client, self.ctx, token_url=token_request[0],
                                       form=token_request[1], secrets=secrets)  # fmt: skip
            headers["Authorization"] = f"Bearer {token}"
            secrets.append(token)
        return http_client.download(self.client, self.ctx, path, consume, params=params,
                                    headers=headers, secrets=secrets)  # fmt: skip

    def redacted(self, value: Any) -> Any:
        return http_client.redact(value, self.secrets)


def json_body(response: httpx.Response) -> Any:
    """The response's JSON body; a vendor answering something else is a permanent error."""
    try:
        return response.json()
    except ValueError:
        raise PermanentError(
            f"{response.request.method} {response.request.url.copy_with(query=None)} answered "
            f"HTTP {response.status_code} without a JSON body",
            kind="vendor_response",
        ) from None
