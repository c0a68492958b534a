"""The shared HTTP layer: classification, Retry-After, redirects, size cap, redaction."""

from __future__ import annotations

import email.utils
from collections.abc import Callable

import pytest

from integrations import http_client
from integrations.errors import AttemptFenced, PermanentError, TransientError
from tests.integrations.conftest import LocalServer, make_ctx

NOW = 1_800_000_000.0


def _send(server: LocalServer, path: str, *, private: bool = True, **kwargs: object) -> object:
    ctx = make_ctx()
    with http_client.build_client(
        ctx, base_url=server.url, allow_private_network=private
    ) as client:
        return http_client.send(client, ctx, "GET", path, **kwargs)  # type: ignore[arg-type]


def test_retry_after_in_seconds_is_the_delay() -> None:
    assert http_client.retry_after_seconds({"Retry-After": "7"}, now=NOW) == 7


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    when = email.utils.formatdate(NOW + 30, usegmt=True)
    assert http_client.retry_after_seconds({"Retry-After": when}, now=NOW) == 30


def test_retry_after_in_the_past_means_now() -> None:
    when = email.utils.formatdate(NOW - 30, usegmt=True)
    assert http_client.retry_after_seconds({"Retry-After": when}, now=NOW) == 0


def test_crowdstrike_retryafter_epoch_becomes_a_delay() -> None:
    headers = {"X-Ratelimit-Retryafter": str(int(NOW + 12))}
    assert http_client.retry_after_seconds(headers, now=NOW) == 12


def test_ratelimit_reset_counts_only_when_clearly_a_time() -> None:
    assert http_client.retry_after_seconds({"X-RateLimit-Reset": str(int(NOW + 5))}, now=NOW) == 5
    assert (
        http_client.retry_after_seconds({"X-RateLimit-Reset": "2027-01-15T08:00:05Z"}, now=NOW) == 5
    )
    assert http_client.retry_after_seconds({"X-RateLimit-Reset": "60"}, now=NOW) is None


def test_unparseable_retry_headers_give_no_delay() -> None:
    assert http_client.retry_after_seconds({"Retry-After": "soon"}, now=NOW) is None
    assert http_client.retry_after_seconds({"Retry-After": "nan"}, now=NOW) is None
    assert http_client.retry_after_seconds({}, now=NOW) is None


def test_redaction_covers_raw_url_encoded_and_json_escaped_secrets() -> None:
    secret = 's3cr/t"+val'
    text = f'raw {secret} url s3cr%2Ft%22%2Bval json s3cr/t\\"+val'
    assert (
        http_client.redact_text(text, [secret]) == "raw [redacted] url [redacted] json [redacted]"
    )


def test_redaction_replaces_the_longest_secret_whole() -> None:
    assert http_client.redact_text("key abcd-efgh", ["abcd", "abcd-efgh"]) == "key [redacted]"


def test_credential_secrets_include_nested_headers_and_the_basic_token() -> None:
    found = http_client.credential_secrets(
        {"username": "ann", "password": "pw-1234", "headers": {"X-Api-Key": "k-999"}}
    )
    assert {"pw-1234", "k-999", "YW5uOnB3LTEyMzQ="} <= set(found)


def test_send_adds_the_attempts_idempotency_key(web: LocalServer) -> None:
    _send(web, "/echo")
    _send(web, "/echo")
    keys = [r.headers["idempotency-key"] for r in web.requests]
    assert keys == ["run-7:call:-:1", "run-7:call:-:1"]


def test_a_fenced_attempt_sends_nothing(web: LocalServer) -> None:
    ctx = make_ctx()
    with http_client.build_client(ctx, base_url=web.url, allow_private_network=True) as client:
        ctx.fenced.set()
        with pytest.raises(AttemptFenced):
            http_client.send(client, ctx, "POST", "/echo", json={"x": 1})
    assert web.requests == []


@pytest.mark.parametrize("declared", ["1", ""])
def test_a_response_over_the_size_cap_is_refused(web: LocalServer, declared: str) -> None:
    with pytest.raises(PermanentError, match="response too large") as caught:
        _send(web, "/big", params={"bytes": 5000, "declared": declared}, max_bytes=4096)
    assert caught.value.kind == "response_too_large"
    response = _send(web, "/big", params={"bytes": 4000, "declared": declared}, max_bytes=4096)
    assert len(response.content) == 4000  # type: ignore[attr-defined]


def test_server_errors_and_rate_limits_are_transient(web: LocalServer) -> None:
    with pytest.raises(TransientError) as caught:
        _send(web, "/status/502")
    assert (caught.value.kind, caught.value.details["status_code"]) == ("http_status", 502)
    with pytest.raises(TransientError) as caught:
        _send(web, "/status/429", params={"retry_after": "3"})
    assert caught.value.retry_after == 3


@pytest.mark.parametrize(("status", "sent"), [(500, True), (502, True), (504, True), (503, False),
                                              (429, False), (408, False)])  # fmt: skip
def test_a_server_error_may_have_acted_but_busy_answers_say_it_did_not(
    web: LocalServer, status: int, sent: bool
) -> None:
    with pytest.raises(TransientError) as caught:
        _send(web, f"/status/{status}")
    assert caught.value.details["request_sent"] is sent


def test_client_errors_are_permanent(web: LocalServer) -> None:
    with pytest.raises(PermanentError) as caught:
        _send(web, "/status/403")
    assert caught.value.kind == "http_status"
    assert "HTTP 403" in caught.value.message


def test_an_unreachable_port_is_a_transient_connection_error(web: LocalServer) -> None:
    ctx = make_ctx()
    client = http_client.build_client(ctx, base_url=None, allow_private_network=True)
    with client, pytest.raises(TransientError) as caught:
        http_client.send(client, ctx, "GET", "http://127.0.0.1:9/")
    assert caught.value.kind == "connection"
    assert caught.value.details["request_sent"] is False


def test_credential_headers_do_not_follow_a_redirect_to_another_origin(
    start_server: Callable[[], LocalServer],
) -> None:
    vendor, elsewhere = start_server(), start_server()
    ctx = make_ctx()
    with http_client.build_client(
        ctx,
        base_url=vendor.url,
        allow_private_network=True,
        headers={"X-Api-Key": "key-123456"},
        auth=("ann", "pw-123456"),
    ) as client:
        http_client.send(client, ctx, "GET", "/redirect", params={"to": f"{vendor.url}/echo"})
        http_client.send(client, ctx, "GET", "/redirect", params={"to": f"{elsewhere.url}/echo"})
    same_origin_hop = vendor.requests[1].headers
    assert same_origin_hop["x-api-key"] == "key-123456"
    assert same_origin_hop["authorization"].startswith("Basic ")
    (cross_origin_hop,) = elsewhere.requests
    assert "x-api-key" not in cross_origin_hop.headers
    assert "authorization" not in cross_origin_hop.headers
    assert cross_origin_hop.headers["idempotency-key"] == "run-7:call:-:1"


def test_redirect_loops_stop_after_a_few_hops(web: LocalServer) -> None:
    with pytest.raises(PermanentError) as caught:
        _send(web, "/loop")
    assert caught.value.kind == "redirect"
    assert len(web.requests) == http_client.MAX_REDIRECTS + 1


def test_env_proxies_cannot_route_around_the_guard(
    monkeypatch: pytest.MonkeyPatch, web: LocalServer
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, web.url)
    ctx = make_ctx()
    client = http_client.build_client(ctx, base_url=None, allow_private_network=False)
    with client, pytest.raises(PermanentError):
        http_client.send(client, ctx, "GET", "http://10.0.0.1/")
    assert web.requests == []
