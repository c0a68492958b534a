"""`http.request` against a local server, through the action registry."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from integrations.context import ActionContext
from integrations.errors import PermanentError, TransientError
from integrations.registry import get_action, invoke
from tests.integrations.conftest import LocalServer, local_connection, make_ctx

# Connection health (circuit, rate limit) lives in the database.
pytestmark = pytest.mark.django_db

TOKEN = "tok-SECRET-4242"


def _call(ctx: ActionContext, **inputs: Any) -> dict[str, Any]:
    spec = get_action("http.request")
    assert spec is not None
    return invoke(spec, ctx, inputs)


def test_the_action_is_registered_as_an_idempotent_write_with_an_optional_connection() -> None:
    spec = get_action("http.request")
    assert spec is not None
    assert (spec.side_effect, spec.idempotent) == ("write", True)
    assert (spec.connection_integration, spec.connection_required) == ("http", False)
    assert set(spec.input_schema()["properties"]) == {
        "method",
        "url",
        "headers",
        "params",
        "json",
        "body",
        "expect_status",
    }


def test_json_goes_out_and_comes_back_through_a_relative_url(web: LocalServer) -> None:
    out = _call(
        make_ctx(local_connection(web)),
        method="POST",
        url="/echo",
        json={"host": "web-1", "tags": ["a"]},
        params={"verbose": True, "n": 3},
        headers={"X-Trace": "t1"},
    )
    assert out["status_code"] == 200
    assert out["json"]["method"] == "POST"
    assert out["json"]["json"] == {"host": "web-1", "tags": ["a"]}
    assert out["json"]["query"] == {"verbose": ["true"], "n": ["3"]}
    (seen,) = web.requests
    assert seen.headers["x-trace"] == "t1"
    assert seen.headers["content-type"] == "application/json"
    assert out["headers"]["content-type"] == "application/json"
    assert out["text"] is None  # the body once: it parsed as JSON


def test_a_text_body_is_sent_as_is_and_a_non_json_reply_has_no_json(web: LocalServer) -> None:
    ctx = make_ctx(local_connection(web))
    _call(ctx, method="PUT", url="/echo", body="raw=1")
    assert web.requests[0].body == b"raw=1"
    out = _call(ctx, url="/text")
    assert (out["json"], out["text"]) == (None, "plain words")


def test_a_bearer_token_is_applied_and_never_shown(web: LocalServer) -> None:
    out = _call(make_ctx(local_connection(web, {"token": TOKEN})), url="/echo")
    assert web.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert out["json"]["headers"]["authorization"] == "Bearer [redacted]"
    assert TOKEN not in json.dumps(out)


def test_basic_credentials_are_applied_and_never_shown(web: LocalServer) -> None:
    creds = {"username": "svc-bulwark", "password": "pw-SECRET-77"}
    out = _call(make_ctx(local_connection(web, creds)), url="/echo")
    token = base64.b64encode(b"svc-bulwark:pw-SECRET-77").decode()
    assert web.requests[0].headers["authorization"] == f"Basic {token}"
    assert token not in json.dumps(out)
    assert "pw-SECRET-77" not in json.dumps(out)


def test_credential_headers_are_applied_and_never_shown(web: LocalServer) -> None:
    creds = {"headers": {"X-Api-Key": "key-SECRET-99"}}
    out = _call(make_ctx(local_connection(web, creds)), url="/echo")
    assert web.requests[0].headers["x-api-key"] == "key-SECRET-99"
    assert out["json"]["headers"]["x-api-key"] == "[redacted]"


def test_the_idempotency_key_is_sent_and_stable_for_one_attempt(web: LocalServer) -> None:
    ctx = make_ctx(local_connection(web))
    _call(ctx, method="POST", url="/echo", json={})
    _call(ctx, method="POST", url="/echo", json={})
    keys = {r.headers["idempotency-key"] for r in web.requests}
    assert keys == {ctx.idempotency_key}


def test_service_unavailable_is_transient(web: LocalServer) -> None:
    with pytest.raises(TransientError) as caught:
        _call(make_ctx(local_connection(web)), url="/status/503")
    assert caught.value.kind == "http_status"
    assert caught.value.retry_after is None


def test_too_many_requests_carries_the_retry_after(web: LocalServer) -> None:
    with pytest.raises(TransientError) as caught:
        _call(make_ctx(local_connection(web)), url="/status/429", params={"retry_after": "7"})
    assert caught.value.retry_after == 7


def test_not_found_is_permanent_unless_expected(web: LocalServer) -> None:
    ctx = make_ctx(local_connection(web))
    with pytest.raises(PermanentError) as caught:
        _call(ctx, url="/status/404")
    assert caught.value.details["status_code"] == 404
    out = _call(ctx, url="/status/404", expect_status=[404])
    assert (out["status_code"], out["json"]["error"]) == (404, "status")


def test_a_slow_server_is_a_transient_timeout(web: LocalServer) -> None:
    with pytest.raises(TransientError) as caught:
        _call(make_ctx(local_connection(web), timeout=0.5), url="/slow", params={"seconds": 2})
    assert caught.value.kind == "timeout"


def test_credentials_reflected_into_an_error_are_redacted(web: LocalServer) -> None:
    with pytest.raises(PermanentError) as caught:
        _call(
            make_ctx(local_connection(web, {"token": TOKEN})),
            url="/status/400",
            params={"reflect": 1},
        )
    assert "Bearer [redacted]" in caught.value.message
    assert TOKEN not in caught.value.message
    assert TOKEN not in json.dumps(caught.value.details)


def test_without_a_connection_internal_targets_are_refused(web: LocalServer) -> None:
    with pytest.raises(PermanentError) as caught:
        _call(make_ctx(), url=f"{web.url}/echo")
    assert caught.value.kind == "ssrf"
    assert web.requests == []


def test_a_redirect_to_cloud_metadata_is_refused_even_with_private_network_allowed(
    web: LocalServer,
) -> None:
    with pytest.raises(PermanentError) as caught:
        _call(
            make_ctx(local_connection(web)),
            url="/redirect",
            params={"to": "http://169.254.169.254/latest/meta-data/"},
        )
    assert caught.value.kind == "ssrf"
    assert [r.path for r in web.requests] == ["/redirect"]


def test_credentials_are_not_sent_to_an_absolute_url_outside_the_connection(
    web: LocalServer,
) -> None:
    with pytest.raises(PermanentError, match="outside connection"):
        _call(make_ctx(local_connection(web, {"token": TOKEN})), url="https://example.com/steal")


def test_without_a_connection_the_url_must_be_absolute() -> None:
    with pytest.raises(PermanentError, match="absolute"):
        _call(make_ctx(), url="/echo")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://example.com/_x"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(PermanentError) as caught:
        _call(make_ctx(), url=url)
    assert caught.value.kind == "ssrf"


def test_json_and_body_together_are_refused(web: LocalServer) -> None:
    with pytest.raises(PermanentError, match="either json or body"):
        _call(make_ctx(local_connection(web)), method="POST", url="/echo", json={}, body="x")
    assert web.requests == []


def test_an_unknown_method_is_a_validation_error() -> None:
    with pytest.raises(PermanentError) as caught:
        _call(make_ctx(), method="TRACE", url="https://example.com/")
    assert caught.value.kind == "validation"
