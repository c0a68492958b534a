"""Defender for Endpoint actions against the lab's simulator."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from integrations.context import ActionContext, ConnectionInfo, PollAgain
from integrations.defender import actions
from integrations.defender.simulator import (
    LAB_CLIENT_ID,
    LAB_CLIENT_SECRET,
    LAB_TENANT,
    package_content,
)
from integrations.errors import PermanentError, TransientError
from tests.integrations.conftest import make_ctx, poll_until_done

pytestmark = pytest.mark.django_db
MACHINE = "1e5c0d0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
CREDENTIALS = {
    "tenant_id": LAB_TENANT,
    "client_id": LAB_CLIENT_ID,
    "client_secret": LAB_CLIENT_SECRET,
}


@pytest.fixture
def defender(lab: Any) -> Any:
    sim = lab["defender"]
    sim.step_seconds = 0.05
    return sim


def ctx_for(lab: Any, credentials: dict[str, Any] = CREDENTIALS) -> ActionContext:
    info = ConnectionInfo(name="lab-defender", integration="defender", base_url=lab.base_url("defender"),
                          credentials=credentials, allow_private_network=True,
                          options={"login_url": lab.base_url("defender")})  # fmt: skip
    return make_ctx(info)


def isolate(ctx: ActionContext, **extra: Any) -> Any:
    return actions.isolate_machine(ctx, machine_id=MACHINE, comment="Bulwark run 7: ransomware",
                                   poll_interval=0.05, **extra)  # fmt: skip


def test_isolate_gets_an_entra_token_posts_case_sensitive_keys_and_waits(
    lab: Any, defender: Any
) -> None:
    # Long enough that the check right after the request cannot find it done already,
    # even on a loaded machine (the fixture's 0.05 s once could).
    defender.step_seconds = 0.4
    output, polls = poll_until_done(isolate, ctx_for(lab))
    assert (output["type"], output["status"], output["machineId"]) == (
        "Isolate",
        "Succeeded",
        MACHINE,
    )
    assert output["adopted"] is False
    assert polls >= 1
    (token,) = defender.requests("POST", f"/{LAB_TENANT}/oauth2/v2.0/token")
    assert token.form == {"grant_type": "client_credentials", "client_id": LAB_CLIENT_ID,
                          "client_secret": LAB_CLIENT_SECRET,
                          "scope": "https://api.securitycenter.microsoft.com/.default"}  # fmt: skip
    (post,) = defender.requests("POST", f"/api/machines/{MACHINE}/isolate")
    assert post.json == {"Comment": "Bulwark run 7: ransomware", "IsolationType": "Full"}
    assert post.headers["authorization"].startswith("Bearer ")
    (lookup,) = defender.requests("GET", "/api/machineactions")
    assert (
        lookup.query["$filter"]
        == f"machineId eq '{MACHINE}' and (type eq 'Isolate' or type eq 'Unisolate')"
    )
    assert lookup.at < post.at


def test_an_isolation_already_pending_is_adopted_not_requested_again(
    lab: Any, defender: Any
) -> None:
    with pytest.raises(PollAgain):
        isolate(ctx_for(lab))
    output, _ = poll_until_done(isolate, ctx_for(lab))  # a new attempt without the progress
    assert output["adopted"] is True
    assert len(defender.requests("POST", f"/api/machines/{MACHINE}/isolate")) == 1


def test_an_isolated_machine_is_not_isolated_again_but_a_released_one_is(
    lab: Any, defender: Any
) -> None:
    poll_until_done(isolate, ctx_for(lab))
    again, _ = poll_until_done(isolate, ctx_for(lab))
    assert again["adopted"] is True

    def release(c: ActionContext) -> Any:
        return actions.unisolate_machine(c, machine_id=MACHINE, comment="clean", poll_interval=0.05)

    released, _ = poll_until_done(release, ctx_for(lab))
    assert (released["type"], released["status"]) == ("Unisolate", "Succeeded")
    (post,) = defender.requests("POST", f"/api/machines/{MACHINE}/unisolate")
    assert post.json == {"Comment": "clean"}
    poll_until_done(isolate, ctx_for(lab))
    assert len(defender.requests("POST", f"/api/machines/{MACHINE}/isolate")) == 2


def test_active_request_already_exists_adopts_the_running_action(lab: Any, defender: Any) -> None:
    with pytest.raises(PollAgain):
        isolate(ctx_for(lab))  # an isolation is now pending
    # The next attempt's lookup lags behind (it sees no action), so it asks again, and
    # Defender answers 400 ActiveRequestAlreadyExists: the running action is adopted.
    defender.inject(200, {"value": []}, method="GET", path="/api/machineactions")
    with pytest.raises(PollAgain) as waiting:
        isolate(ctx_for(lab))
    posts = defender.requests("POST", f"/api/machines/{MACHINE}/isolate")
    assert len(posts) == 2
    (pending,) = defender.actions.values()
    assert waiting.value.progress["action_id"] == pending["id"]


def test_a_failed_machine_action_fails_the_step(lab: Any, defender: Any) -> None:
    defender.fail_next.add("Isolate")
    with pytest.raises(PermanentError) as failed:
        poll_until_done(isolate, ctx_for(lab))
    assert failed.value.kind == "vendor_action_failed"
    assert "Failed" in failed.value.message


def test_an_unknown_machine_is_not_found(lab: Any, defender: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.isolate_machine(ctx_for(lab), machine_id="0" * 40, comment="x")
    assert failed.value.kind == "not_found"
    assert "ResourceNotFound" in failed.value.message


def test_bad_client_credentials_fail_without_the_secret(lab: Any, defender: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        isolate(ctx_for(lab, {**CREDENTIALS, "client_secret": "not-the-secret-42"}))
    assert "401" in failed.value.message
    assert "not-the-secret-42" not in failed.value.message


def test_a_429_names_defenders_retry_after(lab: Any, defender: Any) -> None:
    defender.rate_limited(15, path="/api/machineactions")
    with pytest.raises(TransientError) as failed:
        isolate(ctx_for(lab))
    assert failed.value.retry_after == 15


def test_the_investigation_package_is_kept_as_evidence_downloaded_without_the_token(
    lab: Any, defender: Any, settings: Any, tmp_path: Path
) -> None:
    from artifacts.models import Artifact
    from artifacts.store import read_verified

    settings.BULWARK_ARTIFACT_DIR = tmp_path

    def collect(c: ActionContext) -> Any:
        return actions.collect_investigation_package(
            c, machine_id=MACHINE, comment="evidence for run 7", poll_interval=0.05
        )

    output, _ = poll_until_done(collect, ctx_for(lab))
    expected = package_content(MACHINE)
    assert output["sha256"] == hashlib.sha256(expected).hexdigest()
    assert read_verified(Artifact.objects.get(pk=output["artifact_id"])) == expected
    assert (
        len(
            defender.requests(
                "GET", f"/api/machineactions/{output['machine_action']['id']}/getPackageUri"
            )
        )
        == 1
    )
    (download,) = [c for c in defender.requests("GET") if c.path.startswith("/packages/")]
    assert "authorization" not in download.headers  # the SAS link is its own credential


def test_a_machine_id_that_is_not_one_never_reaches_a_filter_or_a_path(
    lab: Any, defender: Any
) -> None:
    poll_until_done(isolate, ctx_for(lab))  # another machine's isolation exists
    forged = f"{MACHINE}' or machineId ne 'x"
    with pytest.raises(PermanentError) as failed:
        actions.isolate_machine(ctx_for(lab), machine_id=forged, comment="x")
    assert failed.value.kind == "validation"
    assert len(defender.requests("GET", "/api/machineactions")) == 1
