"""The runs API: start, list with filters, detail, cancel, retry a step, roles."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from core.dispatch import InlineDispatcher
from core.models import Run
from tests.conftest import client_for
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)

INPUTS = {"host": {"type": "string", "required": True}, "level": {"type": "string", "enum": ["low", "high"],
                                                                   "default": "low"}}  # fmt: skip


@pytest.fixture
def playbook() -> str:
    published_version(definition(echo("a"), echo("b", "a"), name="api-playbook", inputs=INPUTS))
    return "api-playbook"


def test_an_analyst_starts_a_run_and_sees_it_succeed(
    bob: User, playbook: str, inline_dispatch: InlineDispatcher
) -> None:
    client = client_for(bob)
    response = client.post(
        "/api/v1/runs/", {"playbook": playbook, "inputs": {"host": "h1"}}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "running"
    assert body["version"] == 1
    assert body["inputs"] == {"host": "h1", "level": "low"}
    assert [s["id"] for s in body["steps"]] == ["a", "b"]
    inline_dispatch.drain()
    detail = client.get(f"/api/v1/runs/{body['id']}/").json()
    assert detail["status"] == "succeeded"
    step = detail["steps"][1]
    assert (step["status"], step["attempts"], step["output"]["message"]) == ("succeeded", 1, "b")
    assert step["attempt_history"][0]["outcome"] == "succeeded"
    assert step["attempt_history"][0]["idempotency_key"].startswith(f"bulwark-{body['id']}-b-")


def test_bad_inputs_are_refused_with_their_paths_and_nothing_is_stored(
    bob: User, playbook: str
) -> None:
    response = client_for(bob).post(
        "/api/v1/runs/",
        {"playbook": playbook, "inputs": {"level": "extreme", "extra": 1}},
        format="json",
    )
    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {"inputs.host", "inputs.level", "inputs.extra"}
    assert not Run.objects.exists()


def test_an_unknown_playbook_is_a_400_naming_the_field(bob: User) -> None:
    response = client_for(bob).post("/api/v1/runs/", {"playbook": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "playbook"


def test_a_viewer_cannot_start_a_run_but_can_list_them(dave: User, playbook: str) -> None:
    client = client_for(dave)
    assert (
        client.post(
            "/api/v1/runs/", {"playbook": playbook, "inputs": {"host": "h"}}, format="json"
        ).status_code
        == 403
    )
    assert client.get("/api/v1/runs/").status_code == 200


def test_anonymous_requests_are_refused() -> None:
    assert client_for(None).get("/api/v1/runs/").status_code in (401, 403)


def test_runs_are_filtered_by_playbook_status_and_since(
    bob: User, playbook: str, inline_dispatch: InlineDispatcher
) -> None:
    client = client_for(bob)
    first = client.post(
        "/api/v1/runs/", {"playbook": playbook, "inputs": {"host": "1"}}, format="json"
    ).json()
    inline_dispatch.drain()
    second = client.post(
        "/api/v1/runs/", {"playbook": playbook, "inputs": {"host": "2"}}, format="json"
    ).json()
    succeeded = client.get("/api/v1/runs/?status=succeeded").json()["results"]
    assert [r["id"] for r in succeeded] == [first["id"]]
    running = client.get(f"/api/v1/runs/?playbook={playbook}&status=running").json()["results"]
    assert [r["id"] for r in running] == [second["id"]]
    assert client.get("/api/v1/runs/?since=2999-01-01T00:00:00Z").json()["results"] == []


def test_cancel_stops_a_run_and_cancelling_again_is_a_conflict(bob: User, playbook: str) -> None:
    client = client_for(bob)
    run = client.post(
        "/api/v1/runs/", {"playbook": playbook, "inputs": {"host": "h"}}, format="json"
    ).json()
    response = client.post(f"/api/v1/runs/{run['id']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert {s["status"] for s in response.json()["steps"]} == {"cancelled"}
    again = client.post(f"/api/v1/runs/{run['id']}/cancel/")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["error"]


def test_retrying_a_failed_step_runs_it_again(bob: User, inline_dispatch: InlineDispatcher) -> None:
    flaky = {
        "id": "flaky",
        "action": "util.fail",
        "with": {"succeed_on_attempt": 2},
        "retry": {"attempts": 1},
    }
    published_version(definition(flaky, echo("after", "flaky"), name="flaky"))
    client = client_for(bob)
    run = client.post("/api/v1/runs/", {"playbook": "flaky"}, format="json").json()
    inline_dispatch.drain()
    assert client.get(f"/api/v1/runs/{run['id']}/").json()["status"] == "failed"
    response = client.post(f"/api/v1/runs/{run['id']}/steps/flaky/retry/")
    assert response.status_code == 200, response.json()
    inline_dispatch.drain()
    detail = client.get(f"/api/v1/runs/{run['id']}/").json()
    assert detail["status"] == "succeeded"
    flaky_step = detail["steps"][0]
    assert flaky_step["attempt_group"] == 2
    assert len({a["idempotency_key"] for a in flaky_step["attempt_history"]}) == 2


def test_retrying_a_step_of_a_succeeded_run_is_a_conflict(
    bob: User, playbook: str, inline_dispatch: InlineDispatcher
) -> None:
    client = client_for(bob)
    run = client.post(
        "/api/v1/runs/", {"playbook": playbook, "inputs": {"host": "h"}}, format="json"
    ).json()
    inline_dispatch.drain()
    response = client.post(f"/api/v1/runs/{run['id']}/steps/a/retry/")
    assert response.status_code == 409
    assert response.json()["errors"][0]["path"] == "steps.a"


def test_a_dry_run_starts_marked_dry(
    bob: User, playbook: str, inline_dispatch: InlineDispatcher
) -> None:
    response = client_for(bob).post(
        "/api/v1/runs/",
        {"playbook": playbook, "inputs": {"host": "h"}, "dry_run": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["dry_run"] is True
    assert response.json()["plan"] == []  # echo steps are reads: nothing to plan
    listed = client_for(bob).get("/api/v1/runs/").json()["results"]
    assert [r["dry_run"] for r in listed] == [True]


def test_a_running_step_shows_its_worker_and_since_when(
    bob: User, playbook: str, inline_dispatch: InlineDispatcher
) -> None:
    from core.execution import claim_unit

    client = client_for(bob)
    run = client.post(
        "/api/v1/runs/", {"playbook": playbook, "inputs": {"host": "h"}}, format="json"
    ).json()
    unit_id, token = inline_dispatch.pending.popleft()
    claim_unit(unit_id, token, worker="worker:vm:42:Thread-1")
    step = client.get(f"/api/v1/runs/{run['id']}/").json()["steps"][0]
    assert (step["status"], step["attempts"], step["worker"]) == (
        "running",
        1,
        "worker:vm:42:Thread-1",
    )
    assert step["attempt_started_at"] is not None
    assert step["attempt_history"] == []  # an attempt's row is written when it ends


def test_a_dry_runs_planned_write_is_checked_and_shown_as_the_action_would_take_it(
    bob: User, inline_dispatch: InlineDispatcher
) -> None:
    from core.runs import start_run
    from integrations.connections import create_connection

    create_connection(integration="http", name="gateway", base_url="https://gw.example.test",
                      credentials={}, actor="user:alice")  # fmt: skip
    version = published_version(definition(
        {"id": "block", "action": "http.request", "connection": "gateway",
         "with": {"method": "POST", "url": "https://gw.example.test/block"}},
        {"id": "typo", "action": "http.request", "connection": "gateway",
         "with": {"method": "POST", "urll": "https://gw.example.test/x"}},
        name="http-dry"))  # fmt: skip
    run = start_run(playbook=version.playbook, actor="user:bob", dry_run=True)
    inline_dispatch.drain()
    units = {u.step_id: u for u in Run.objects.get(pk=run.pk).units.all()}
    assert units["block"].output["plan"] == (
        "would send POST https://gw.example.test/block via connection gateway"
    )
    assert units["typo"].status == "failed"  # as the real call would refuse it
    assert units["typo"].error["message"].startswith("invalid inputs for http.request: url")


def test_fixtures_must_name_what_the_version_has_and_hold_an_output(
    bob: User, playbook: str
) -> None:
    start = {"playbook": playbook, "inputs": {"host": "h"}, "dry_run": True}
    response = client_for(bob).post("/api/v1/runs/", {**start, "fixtures": {"frist": {}, "a": None}},
                                    format="json")  # fmt: skip
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "path": "fixtures.frist",
            "message": "names no step, for_each item or action of this version",
        },
        {"path": "fixtures.a", "message": "is null: a fixture is the output to answer with"},
    ]
    assert not Run.objects.exists()
