"""GET /api/v1/audit/: auditors and admins read and filter the trail; nobody writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User

from audit.events import record_event
from audit.models import AuditEvent
from tests.conftest import client_for

pytestmark = pytest.mark.urls("tests.audit.urls")

URL = "/api/v1/audit/"


@pytest.fixture
def events(db: None) -> list[AuditEvent]:
    recorded = []
    with time_machine.travel(datetime(2025, 5, 1, 9, 0, tzinfo=UTC), tick=False):
        recorded.append(
            record_event(
                stream="playbook:contain",
                kind="version.published",
                actor="user:alice",
                playbook="contain",
            )
        )
        recorded.append(
            record_event(
                stream="run:1", kind="run.started", actor="user:bob", run_id=1, playbook="contain"
            )
        )
    with time_machine.travel(datetime(2025, 5, 2, 9, 0, tzinfo=UTC), tick=False):
        recorded.append(
            record_event(
                stream="run:1",
                kind="step.succeeded",
                actor="system",
                run_id=1,
                step_id="isolate",
                playbook="contain",
                payload={"host": "ws-1"},
            )
        )
        recorded.append(
            record_event(
                stream="run:2", kind="run.started", actor="user:bob", run_id=2, playbook="notify"
            )
        )
    return recorded


def _ids(user: User, query: str = "") -> list[int]:
    response = client_for(user).get(URL + query)
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_an_auditor_reads_every_field_of_every_event_oldest_first(
    carol: User, events: list[AuditEvent]
) -> None:
    response = client_for(carol).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [row["id"] for row in body["results"]] == [e.pk for e in events]
    row = body["results"][2]
    assert row == {
        "id": events[2].pk,
        "stream": "run:1",
        "seq": 2,
        "created_at": "2025-05-02T09:00:00Z",
        "actor": "system",
        "kind": "step.succeeded",
        "run_id": 1,
        "step_id": "isolate",
        "playbook": "contain",
        "payload": {"host": "ws-1"},
        "prev_hash": events[1].hash,
        "hash": events[2].hash,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?run=1", [1, 2]),
        ("?stream=run:2", [3]),
        ("?kind=run.started", [1, 3]),
        ("?playbook=contain", [0, 1, 2]),
        ("?since=2025-05-02T00:00:00Z", [2, 3]),
        ("?run=1&kind=step.succeeded", [2]),
        ("?run=3", []),
    ],
)
def test_the_list_is_filtered_by_the_query(
    carol: User, events: list[AuditEvent], query: str, expected: list[int]
) -> None:
    assert _ids(carol, query) == [events[i].pk for i in expected]


def test_one_event_can_be_fetched_by_id(carol: User, events: list[AuditEvent]) -> None:
    response = client_for(carol).get(f"{URL}{events[0].pk}/")
    assert response.status_code == 200
    assert response.json()["kind"] == "version.published"


def test_a_viewer_is_refused(dave: User, events: list[AuditEvent]) -> None:
    response = client_for(dave).get(URL)
    assert response.status_code == 403
    assert "auditor" in response.json()["error"]
    assert client_for(dave).get(f"{URL}{events[0].pk}/").status_code == 403


def test_an_anonymous_caller_is_refused(events: list[AuditEvent]) -> None:
    assert client_for(None).get(URL).status_code in {401, 403}


def test_an_admin_may_read(admin_user: User, events: list[AuditEvent]) -> None:
    assert len(_ids(admin_user)) == 4


@pytest.mark.parametrize(
    ("method", "path"), [("post", ""), ("put", "{id}/"), ("patch", "{id}/"), ("delete", "{id}/")]
)
def test_the_api_cannot_write_the_trail(
    admin_user: User, events: list[AuditEvent], method: str, path: str
) -> None:
    client: Any = client_for(admin_user)
    response = getattr(client, method)(URL + path.format(id=events[0].pk), {}, format="json")
    assert response.status_code == 405
    assert AuditEvent.objects.count() == 4
    assert AuditEvent.objects.get(pk=events[0].pk).kind == "version.published"
