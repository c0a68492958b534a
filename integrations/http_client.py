"""The one HTTP layer every connector uses.

It decides what no connector may decide alone: the SSRF guard (via `netguard`), timeouts
from the attempt's deadline, the idempotency header, how failures are classified
(retryable or not, and after how long), the response size cap, and secret redaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json as jsonlib
import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from integrations.context import ActionContext
from integrations.errors import ActionError, PermanentError, TransientError
from integrations.netguard import GuardedTransport

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
REDACTED = "[redacted]"
# Shorter credential values would garble ordinary text and protect nothing.
MIN_SECRET_LENGTH = 4
# A vendor asking for more than a day is not asking for a retry.
MAX_RETRY_AFTER = 86400.0
_EPOCH_THRESHOLD = 1e9  # numbers this large in reset headers are Unix times, not delays
_ALWAYS_SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie"})
_PERMANENT_5XX = frozenset({501, 505})


class VendorClient(httpx.Client):
    """An httpx client that knows which of its default headers carry credentials."""

    def __init__(self, *, sensitive_headers: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sensitive_headers = frozenset(h.lower() for h in sensitive_headers) | _ALWAYS_SENSITIVE


def build_client(
    ctx: ActionContext,
    *,
    base_url: str | None,
    allow_private_network: bool,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    verify: bool = True,
) -> VendorClient:
    """A client for one attempt: guarded transport, no env proxies, deadline-bound timeouts.

    `headers` and `auth` go with every request to the origin of the first request, and are
    dropped when a redirect leads to another origin. Redirects are followed by `send`.
    """
    return VendorClient(
        base_url=base_url or "",
        headers=dict(headers or {}),
        auth=auth,
        timeout=httpx.Timeout(ctx.remaining()),
        transport=GuardedTransport(allow_private_network=allow_private_network, verify=verify),
        follow_redirects=False,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        sensitive_headers=(headers or {}).keys(),
    )


def send(
    client: httpx.Client,
    ctx: ActionContext,
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    content: str | bytes | None = None,
    expect_status: Collection[int] = (),
    secrets: Collection[str] = (),
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> httpx.Response:
    """Send one request (following up to MAX_REDIRECTS redirects) and read its body.

    A 2xx status, or one in `expect_status`, returns the response; anything else raises
    the classified `ActionError`. Error messages are redacted of `secrets`.
    """
    try:
        request = client.build_request(
            method,
            url,
            params=params,
            headers=headers,
            json=json,
            content=content,
            timeout=httpx.Timeout(ctx.remaining()),
        )
    except httpx.InvalidURL as exc:
        message = redact_text(f"invalid URL {url}: {exc}", secrets)
        raise PermanentError(message, kind="validation") from None
    request.headers["Idempotency-Key"] = ctx.idempotency_key
    origin = _origin(request.url)
    for _hop in range(MAX_REDIRECTS + 1):
        ctx.check()
        request.extensions = {
            **request.extensions,
            "timeout": httpx.Timeout(ctx.remaining()).as_dict(),
        }
        same_origin = _origin(request.url) == origin
        if not same_origin:
            for name in client.sensitive_headers if isinstance(client, VendorClient) else ():
                request.headers.pop(name, None)
        response = _send_once(client, request, same_origin=same_origin, secrets=secrets)
        if response.next_request is None:
            _read_capped(response, ctx, max_bytes=max_bytes, secrets=secrets)
            check_status(response, expect_status=expect_status, secrets=secrets)
            return response
        response.close()
        request = response.next_request
    raise PermanentError(
        f"more than {MAX_REDIRECTS} redirects from {method} {url}", kind="redirect"
    )


def download[T](
    client: httpx.Client,
    ctx: ActionContext,
    url: str,
    consume: Callable[[httpx.Response, Iterator[bytes]], T],
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    secrets: Collection[str] = (),
) -> T:
    """GET a (possibly large) body and hand it to `consume` chunk by chunk, never holding
    it all in memory; the attempt's deadline bounds the transfer. Error statuses raise as
    `send` raises them; redirects are not followed (a file is where it was said to be)."""
    try:
        request = client.build_request("GET", url, params=params, headers=headers,
                                       timeout=httpx.Timeout(ctx.remaining()))  # fmt: skip
    except httpx.InvalidURL as exc:
        raise PermanentError(
            redact_text(f"invalid URL {url}: {exc}", secrets), kind="validation"
        ) from None
    request.headers["Idempotency-Key"] = ctx.idempotency_key
    ctx.check()
    response = _send_once(client, request, same_origin=True, secrets=secrets)
    try:
        if not 200 <= response.status_code < 300:
            _read_capped(response, ctx, max_bytes=64 * 1024, secrets=secrets)
            check_status(response, secrets=secrets)
            raise PermanentError(  # a redirect or other non-2xx success
                f"{_describe(request, secrets)} returned HTTP {response.status_code}, not the file",
                kind="http_status",
            )

        def chunks() -> Iterator[bytes]:
            try:
                for chunk in response.iter_bytes():
                    ctx.remaining()
                    yield chunk
            except httpx.TimeoutException:
                raise TransientError(f"{_describe(request, secrets)} timed out downloading",
                                     kind="timeout") from None  # fmt: skip
            except httpx.TransportError as exc:
                message = redact_text(
                    f"{_describe(request, secrets)}: download broke off: {exc}", secrets
                )
                raise TransientError(message, kind="connection") from None

        return consume(response, chunks())
    finally:
        response.close()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def _describe(request: httpx.Request, secrets: Collection[str]) -> str:
    return redact_text(f"{request.method} {request.url.copy_with(query=None)}", secrets)


def _send_once(
    client: httpx.Client, request: httpx.Request, *, same_origin: bool, secrets: Collection[str]
) -> httpx.Response:
    where = _describe(request, secrets)
    try:
        if same_origin:
            return client.send(request, stream=True, follow_redirects=False)
        # The client's auth belongs to the first origin; another origin gets none.
        return client.send(request, stream=True, follow_redirects=False, auth=None)
    except httpx.TimeoutException as exc:
        sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
        raise TransientError(
            f"{where} timed out ({type(exc).__name__})",
            kind="timeout",
            details={"request_sent": sent},
        ) from None
    except httpx.ConnectError as exc:
        message = redact_text(f"{where}: cannot connect: {exc}", secrets)
        raise TransientError(message, kind="connection", details={"request_sent": False}) from None
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        raise PermanentError(redact_text(f"{where}: {exc}", secrets), kind="validation") from None
    except httpx.TransportError as exc:
        message = redact_text(f"{where}: connection failed: {exc}", secrets)
        raise TransientError(message, kind="connection", details={"request_sent": True}) from None


def _read_capped(
    response: httpx.Response, ctx: ActionContext, *, max_bytes: int, secrets: Collection[str]
) -> None:
    """Read the body into `response.content`, refusing more than `max_bytes` (decoded)."""
    where = _describe(response.request, secrets)
    too_large = PermanentError(
        f"{where}: response too large (over {max_bytes} bytes)",
        kind="response_too_large",
        details={"status_code": response.status_code},
    )
    chunks: list[bytes] = []
    total = 0
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise too_large
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > max_bytes:
                raise too_large
            chunks.append(chunk)
            ctx.remaining()  # the deadline and the lease bound a slow-drip body too
    except httpx.TimeoutException:
        raise TransientError(
            f"{where} timed out reading the response",
            kind="timeout",
            details={"request_sent": True},
        ) from None
    except httpx.DecodingError as exc:
        raise PermanentError(f"{where}: undecodable response: {exc}", kind="decoding") from None
    except httpx.TransportError as exc:
        message = redact_text(f"{where}: connection lost reading the response: {exc}", secrets)
        raise TransientError(message, kind="connection", details={"request_sent": True}) from None
    finally:
        response.close()
    # What Response.read() does, with the cap applied on the way.
    response._content = b"".join(chunks)


def check_status(
    response: httpx.Response, *, expect_status: Collection[int] = (), secrets: Collection[str] = ()
) -> None:
    """Raise the classified error for a status that is neither 2xx nor expected."""
    code = response.status_code
    if 200 <= code < 300 or code in expect_status:
        return
    snippet = redact_text(response.text[:300], secrets)
    message = f"{_describe(response.request, secrets)} returned HTTP {code}"
    if snippet.strip():
        message += f": {snippet.strip()}"
    # A server that answered 500/502/504 may have acted before failing; 408, 429 and 503
    # say the request was not taken up.
    sent = code >= 500 and code != 503
    details: dict[str, object] = {"status_code": code, "body": snippet, "request_sent": sent}
    if code in (408, 429) or (code >= 500 and code not in _PERMANENT_5XX):
        retry_after = retry_after_seconds(response.headers)
        raise TransientError(message, kind="http_status", retry_after=retry_after, details=details)
    raise PermanentError(message, kind="http_status", details=details)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait a response asks for: `Retry-After` (seconds or HTTP-date), else a vendor header.

    Vendor reset headers count only when clearly a point in time (a Unix time, an ISO date)
    or named as a delay; a small bare number in `X-RateLimit-Reset` is ambiguous and ignored.
    """
    now = time.time() if now is None else now
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    candidates: list[float | None] = [
        _delay_or_date(lowered.get("retry-after"), now),
        _delay(lowered.get("x-ratelimit-reset-after")),
        _delay(lowered.get("ratelimit-reset")),
        _point_in_time(lowered.get("x-ratelimit-retryafter"), now),  # CrowdStrike: epoch seconds
        _point_in_time(lowered.get("x-ratelimit-reset"), now),
        _point_in_time(lowered.get("x-rate-limit-reset"), now),
    ]
    for value in candidates:
        if value is not None:
            return min(max(value, 0.0), MAX_RETRY_AFTER)
    return None


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _delay(raw: str | None) -> float | None:
    value = _number(raw)
    return value if value is not None and value < _EPOCH_THRESHOLD else None


def _delay_or_date(raw: str | None, now: float) -> float | None:
    if not raw:
        return None
    if (value := _delay(raw)) is not None:
        return value
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return _until(when, now)


def _point_in_time(raw: str | None, now: float) -> float | None:
    if not raw:
        return None
    value = _number(raw)
    if value is not None:
        return value - now if value >= _EPOCH_THRESHOLD else None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _until(when, now)


def _until(when: dt.datetime, now: float) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp() - now


def credential_secrets(credentials: Mapping[str, Any]) -> list[str]:
    """Every credential string (nested ones too), plus the Basic token they would form."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            found.append(str(value))

    walk(credentials)
    # Pairs that vendors take as HTTP Basic (Jira: e-mail and API token; OAuth clients).
    for user_field, secret_field in BASIC_PAIRS:
        user, secret = credentials.get(user_field), credentials.get(secret_field)
        if isinstance(user, str) and isinstance(secret, str):
            found.append(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return found


BASIC_PAIRS = (("username", "password"), ("email", "api_token"), ("client_id", "client_secret"))


def _variants(secret: str) -> set[str]:
    """A secret as it may appear in text: raw, URL-encoded, JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), jsonlib.dumps(secret)[1:-1]}


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    variants = {v for s in secrets if len(s) >= MIN_SECRET_LENGTH for v in _variants(s)}
    if not variants:
        return None
    # Longest first, so a secret containing another is replaced whole.
    return re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)))


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """`text` with every credential value replaced by `[redacted]`."""
    pattern = _pattern(secrets)
    return pattern.sub(REDACTED, text) if pattern else text


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """`redact_text` applied to every string inside a JSON-like value."""
    pattern = _pattern(secrets)
    if pattern is None:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(REDACTED, item)
        if isinstance(item, Mapping):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def redact_error(error: ActionError, secrets: Iterable[str]) -> ActionError:
    """The same error with its message and details redacted (in place, and returned)."""
    secrets = list(secrets)
    error.message = redact_text(error.message, secrets)
    error.args = (error.message,)
    error.details = redact(error.details, secrets)
    return error
