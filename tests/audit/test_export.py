"""Exporting the trail (JSON Lines, CSV), digests and the public key over the API and CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from audit import export as export_module
from audit.events import NewEvent, record_events
from audit.hashing import chain_hash
from audit.models import AuditDigest, AuditEvent
from audit.signing import current_public_key, key_id
from tests.conftest import client_for

pytestmark = pytest.mark.urls("tests.audit.urls")


@pytest.fixture
def events(db: None) -> list[AuditEvent]:
    with (
        time_machine.travel(datetime(2026, 3, 1, 9, 0, tzinfo=UTC), tick=False),
        transaction.atomic(),
    ):
        early = record_events([
            NewEvent(stream="run:1", kind="run.started", actor="user:bob", run_id=1,
                     payload={"note": "=HYPERLINK(\"http://evil\")", "n": 1}),
            NewEvent(stream="run:1", kind="step.succeeded", actor="system", run_id=1, step_id="a"),
        ])  # fmt: skip
    with (
        time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False),
        transaction.atomic(),
    ):
        late = record_events(
            [NewEvent(stream="run:2", kind="run.started", actor="user:bob", run_id=2)]
        )
    return [*early, *late]


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_a_runs_events_export_as_json_lines_that_each_reverify(
    events: list[AuditEvent], carol: User
) -> None:
    response = client_for(carol).get("/api/v1/audit/export/?run=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl"
    assert response["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in body(response).decode().splitlines()]
    assert [line["id"] for line in lines] == [events[0].pk, events[1].pk]
    for line in lines:
        document = {k: v for k, v in line.items() if k not in ("id", "hash")}
        assert chain_hash(document) == line["hash"]  # the line alone proves its hash
    assert lines[0]["created_at"] == "2026-03-01T09:00:00.000000Z"
    exported = AuditEvent.objects.get(kind="audit.exported")
    assert (exported.actor, exported.payload) == (
        "user:carol",
        {"format": "jsonl", "filters": {"run": "1"}},
    )


def test_a_time_range_exports_as_csv_with_formulas_defused(
    events: list[AuditEvent], carol: User
) -> None:
    response = client_for(carol).get("/api/v1/audit/export/?format=csv&until=2026-03-02T00:00:00Z")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert [row["kind"] for row in rows] == ["run.started", "step.succeeded"]
    payload = rows[0]["payload"]
    assert payload.startswith('{"n":1,"note":"=HYPERLINK')  # inside JSON: harmless
    assert rows[1]["step_id"] == "a"
    assert rows[0]["step_id"] == ""


def test_a_cell_a_spreadsheet_would_run_is_prefixed() -> None:
    assert export_module._cell("=1+1") == "'=1+1"
    assert export_module._cell("@SUM(A1)") == "'@SUM(A1)"
    assert export_module._cell("user:bob") == "user:bob"


def test_exports_are_paged_and_complete(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_module, "PAGE", 3)
    with transaction.atomic():
        record_events([NewEvent(stream="system", kind=f"k{n}", actor="system") for n in range(10)])
    lines = b"".join(export_module.export(AuditEvent.objects.all(), "jsonl")).splitlines()
    assert [json.loads(line)["kind"] for line in lines] == [f"k{n}" for n in range(10)]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?format=xml", 404, ""),
        ("?since=yesterday", 400, "since"),
    ],
)
def test_bad_export_requests_say_what_is_wrong_in_json(
    events: list[AuditEvent], carol: User, query: str, status: int, message: str
) -> None:
    response = client_for(carol).get("/api/v1/audit/export/" + query)
    assert response.status_code == status
    if status == 400:
        assert response["Content-Type"] == "application/json"
        assert message in response.json()["error"]
    assert not AuditEvent.objects.filter(kind="audit.exported").exists()


def test_only_auditors_export(events: list[AuditEvent], bob: User, dave: User) -> None:
    for user in (bob, dave, None):
        assert client_for(user).get("/api/v1/audit/export/").status_code in (401, 403)


def test_the_command_exports_to_a_file(events: list[AuditEvent], tmp_path: Path) -> None:
    target = tmp_path / "trail.csv"
    call_command(
        "audit_export",
        "--format",
        "csv",
        "--since",
        "2026-03-02T00:00:00Z",
        "--output",
        str(target),
    )
    rows = list(csv.DictReader(target.open()))
    assert [(row["stream"], row["kind"]) for row in rows] == [("run:2", "run.started")]
    with pytest.raises(CommandError, match="--since must be an ISO 8601 time with a zone"):
        call_command("audit_export", "--since", "2026-03-02")


def test_an_auditor_makes_a_digest_and_reads_the_key_that_verifies_it(
    events: list[AuditEvent], carol: User, bob: User
) -> None:
    api = client_for(carol)
    made = api.post("/api/v1/audit/digests/")
    assert made.status_code == 201
    assert (made.json()["seq"], made.json()["head_count"]) == (1, 2)
    assert api.get("/api/v1/audit/digests/").json()["results"][0]["hash"] == made.json()["hash"]
    assert api.get("/api/v1/audit/digests/1/").json()["signature"] == made.json()["signature"]
    key = api.get("/api/v1/audit/public-key/").json()
    assert key["key_id"] == key_id(current_public_key()) == made.json()["key_id"]
    assert load_pem_public_key(key["pem"].encode()) is not None
    assert client_for(bob).post("/api/v1/audit/digests/").status_code == 403
    assert AuditDigest.objects.count() == 1


def test_verify_over_the_api_names_the_first_problem(events: list[AuditEvent], carol: User) -> None:
    from tests.audit.conftest import tamper

    api = client_for(carol)
    first = api.post("/api/v1/audit/verify/", {}, format="json").json()
    assert "no digest" in first["first_problem"]["reason"]  # the events are months old
    api.post("/api/v1/audit/digests/")
    assert api.post("/api/v1/audit/verify/", {}, format="json").json()["ok"] is True
    tamper("UPDATE {table} SET actor = 'user:mallory' WHERE id = %s", [events[1].pk])
    found = api.post("/api/v1/audit/verify/", {}, format="json").json()
    assert found["ok"] is False
    assert found["first_problem"] == {"stream": "run:1", "seq": 2, "id": events[1].pk,
                                      "reason": "hash does not match the event's contents (the event was altered)"}  # fmt: skip
    only_run_2 = api.post("/api/v1/audit/verify/", {"run": 2}, format="json").json()
    assert (only_run_2["ok"], only_run_2["streams_checked"]) == (True, 1)
    bad = api.post("/api/v1/audit/verify/", {"run": "two"}, format="json")
    assert bad.status_code == 400
    assert "run" in bad.json()["error"]


def test_the_public_key_command_prints_pem(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("audit_public_key")
    assert capsys.readouterr().out.startswith("-----BEGIN PUBLIC KEY-----")


def test_the_digest_command_reports_what_it_signed(
    events: list[AuditEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("audit_digest")
    assert "audit: digest #1 lists 2 stream heads" in capsys.readouterr().out
