"""CrowdStrike Falcon actions against the lab's Falcon simulator, requests checked field by field."""

from __future__ import annotations

import time
from typing import Any

import pytest

from integrations.context import ActionContext, PollAgain
from integrations.crowdstrike import actions
from integrations.crowdstrike.simulator import LAB_CLIENT_ID, LAB_CLIENT_SECRET
from integrations.errors import PermanentError, TransientError
from tests.integrations.conftest import lab_connection, make_ctx, poll_until_done

# Connection health (circuit, rate limit) lives in the database.
pytestmark = pytest.mark.django_db

HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
CREDENTIALS = {"client_id": LAB_CLIENT_ID, "client_secret": LAB_CLIENT_SECRET}


@pytest.fixture
def falcon(lab: Any) -> Any:
    sim = lab["crowdstrike"]
    sim.transition_seconds = 0.1
    return sim


def ctx_for(
    lab: Any, credentials: dict[str, Any] = CREDENTIALS, timeout: float = 5.0
) -> ActionContext:
    return make_ctx(lab_connection(lab, "crowdstrike", credentials), timeout=timeout)


def contain(ctx: ActionContext, **inputs: Any) -> Any:
    return actions.contain_host(ctx, device_id=HOST, **{"poll_interval": 0.1, **inputs})


def test_contain_fetches_one_token_posts_the_ids_and_waits_until_contained(
    lab: Any, falcon: Any
) -> None:
    falcon.transition_seconds = 0.5  # the check right after the request cannot find it done already
    output, polls = poll_until_done(contain, ctx_for(lab))
    assert output["status"] == "contained"
    assert output["hostname"] == "WS-FIN-042"
    assert output["requested"] is True
    assert polls >= 1  # it waited without holding the thread: PollAgain, then called again
    (token,) = falcon.requests("POST", "/oauth2/token")
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    assert token.form == {"client_id": LAB_CLIENT_ID, "client_secret": LAB_CLIENT_SECRET}
    (post,) = falcon.requests("POST", "/devices/entities/devices-actions/v2")
    assert post.query == {"action_name": "contain"}
    assert post.json == {"ids": [HOST]}
    assert post.headers["authorization"].startswith("Bearer ")
    lookups = falcon.requests("GET", "/devices/entities/devices/v2")
    assert lookups[0].query == {"ids": HOST}
    assert lookups[0].at < post.at  # the state is read before the action is asked for
    assert (
        len({c.headers["authorization"] for c in falcon.requests() if c.path != "/oauth2/token"})
        == 1
    )


def test_contain_on_a_contained_host_asks_for_nothing(lab: Any, falcon: Any) -> None:
    falcon.devices[HOST]["status"] = "contained"
    output = contain(ctx_for(lab))
    assert output["status"] == "contained"
    assert output["requested"] is False
    assert falcon.requests("POST", "/devices/entities/devices-actions/v2") == []


def test_a_repeated_attempt_while_pending_does_not_post_again(lab: Any, falcon: Any) -> None:
    falcon.offline.add(HOST)
    ctx = ctx_for(lab)
    with pytest.raises(PollAgain):
        contain(ctx)
    fresh = ctx_for(lab)  # a new attempt that lost the progress (its worker died)
    with pytest.raises(PollAgain):
        contain(fresh)
    assert len(falcon.requests("POST", "/devices/entities/devices-actions/v2")) == 1


def test_a_409_conflict_counts_as_already_requested(lab: Any, falcon: Any) -> None:
    falcon.inject(409, None, method="POST", path="/devices/entities/devices-actions/v2")
    with pytest.raises(PollAgain) as waiting:
        contain(ctx_for(lab))
    assert waiting.value.progress["conflict"] is True


def test_with_wait_false_the_step_ends_once_containment_is_queued(lab: Any, falcon: Any) -> None:
    output = contain(ctx_for(lab), wait=False)
    assert output["status"] == "containment_pending"


def test_an_offline_host_that_never_confirms_fails_at_the_deadline(lab: Any, falcon: Any) -> None:
    falcon.offline.add(HOST)
    ctx = ctx_for(lab)
    with pytest.raises(PermanentError) as failed:
        poll_until_done(lambda c: contain(c, wait_timeout=0.3), ctx, limit=100)
    assert failed.value.kind == "wait_timeout"
    assert "containment_pending" in failed.value.message


def test_lift_containment_waits_until_the_host_is_normal(lab: Any, falcon: Any) -> None:
    falcon.devices[HOST]["status"] = "contained"
    output, _ = poll_until_done(
        lambda c: actions.lift_containment(c, device_id=HOST, poll_interval=0.1), ctx_for(lab)
    )
    assert output["status"] == "normal"
    (post,) = falcon.requests("POST", "/devices/entities/devices-actions/v2")
    assert post.query == {"action_name": "lift_containment"}
    assert post.json == {"ids": [HOST]}


def test_get_host_returns_the_hosts_details(lab: Any, falcon: Any) -> None:
    output = actions.get_host(ctx_for(lab), device_id=HOST)
    assert output == {"device_id": HOST, "hostname": "WS-FIN-042", "status": "normal",
                      "platform_name": "Windows", "os_version": "Windows 11", "local_ip": "10.20.4.42"}  # fmt: skip


def test_an_unknown_host_is_a_permanent_not_found(lab: Any, falcon: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.get_host(ctx_for(lab), device_id="ffff")
    assert failed.value.kind == "not_found"
    assert "404" in failed.value.message


def test_an_expired_token_is_refreshed_once_and_the_call_retried(lab: Any, falcon: Any) -> None:
    actions.get_host(ctx_for(lab), device_id=HOST)
    falcon.expire_tokens()
    actions.get_host(ctx_for(lab), device_id=HOST)
    assert len(falcon.requests("POST", "/oauth2/token")) == 2
    statuses = [c.path for c in falcon.requests("GET", "/devices/entities/devices/v2")]
    assert len(statuses) == 3  # ok, 401, ok after the refresh


def test_bad_credentials_fail_permanently_without_quoting_the_secret(lab: Any, falcon: Any) -> None:
    wrong = {"client_id": LAB_CLIENT_ID, "client_secret": "not-the-secret-value"}
    with pytest.raises(PermanentError) as failed:
        actions.get_host(ctx_for(lab, wrong), device_id=HOST)
    assert "401" in failed.value.message
    assert "not-the-secret-value" not in str(failed.value) + str(failed.value.details)


def test_a_429_asks_to_retry_at_falcons_epoch_seconds_header(lab: Any, falcon: Any) -> None:
    falcon.rate_limited(30, path="/devices/entities/devices/v2")
    with pytest.raises(TransientError) as failed:
        actions.get_host(ctx_for(lab), device_id=HOST)
    assert failed.value.retry_after is not None
    assert 28 <= failed.value.retry_after <= 31


def test_a_server_error_is_transient(lab: Any, falcon: Any) -> None:
    falcon.inject(503, None, path="/devices/entities/devices/v2")
    with pytest.raises(TransientError) as failed:
        actions.get_host(ctx_for(lab), device_id=HOST)
    assert failed.value.kind == "http_status"


def test_a_slow_answer_past_the_attempt_timeout_is_a_transient_timeout(
    lab: Any, falcon: Any
) -> None:
    falcon.inject(0, delay=1.5, path="/devices/entities/devices/v2")
    started = time.monotonic()
    with pytest.raises(TransientError) as failed:
        actions.get_host(ctx_for(lab, timeout=0.5), device_id=HOST)
    assert failed.value.kind == "timeout"
    assert time.monotonic() - started < 1.4


@pytest.mark.django_db
def test_rtr_get_file_keeps_the_file_as_evidence_with_a_verifiable_hash(
    lab: Any, falcon: Any, tmp_path: Any, settings: Any
) -> None:
    import hashlib

    from artifacts.models import Artifact
    from artifacts.store import read_verified
    from audit.models import AuditEvent
    from integrations.crowdstrike.simulator import archive, file_content

    settings.BULWARK_ARTIFACT_DIR = tmp_path
    path = "C:\\Users\\jdoe\\AppData\\Local\\Temp\\invoice.exe"
    output, _ = poll_until_done(
        lambda c: actions.rtr_get_file(c, device_id=HOST, file_path=path, poll_interval=0.1),
        ctx_for(lab),
    )
    expected = archive(file_content(HOST, path))
    assert output["sha256"] == hashlib.sha256(expected).hexdigest()
    assert output["vendor_sha256"] == hashlib.sha256(file_content(HOST, path)).hexdigest()
    artifact = Artifact.objects.get(pk=output["artifact_id"])
    assert read_verified(artifact) == expected
    assert (artifact.run_id, artifact.step_id, artifact.size) == (7, "call", len(expected))
    custody = AuditEvent.objects.get(kind="artifact.collected")
    assert custody.payload["sha256"] == artifact.sha256
    assert custody.run_id == 7
    (session,) = falcon.requests("POST", "/real-time-response/entities/sessions/v1")
    assert session.json == {"device_id": HOST, "queue_offline": False, "origin": "bulwark"}
    (command,) = falcon.requests("POST", "/real-time-response/entities/active-responder-command/v1")
    assert command.json["base_command"] == "get"
    assert command.json["command_string"] == f"get {path}"
    (download,) = falcon.requests("GET", "/real-time-response/entities/extracted-file-contents/v1")
    assert download.query["sha256"] == output["vendor_sha256"]
    assert len(falcon.requests("DELETE", "/real-time-response/entities/sessions/v1")) == 1
