"""A dry run of the contain-compromised-host example against the lab: no simulator hears
a thing, and the run returns its plan."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from core.dispatch import InlineDispatcher
from core.metrics import BulwarkCollector
from core.models import Run
from integrations.lab.connections import ensure_lab_connections
from playbooks.models import Playbook
from playbooks.versions import create_version
from tests.conftest import client_for
from tests.integrations.conftest import run_to_the_end

pytestmark = pytest.mark.django_db(transaction=True)
HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
# The reads answer from recorded fixtures; notify and isolate are planned, with what
# later steps' templates read of them.
FIXTURES = {
    "enrich": {"malicious": 12, "suspicious": 1, "harmless": 40},
    "collect_evidence": {"filename": "invoice.exe", "sha256": "ab" * 32},
    "isolate": {"hostname": "WS-FIN-042", "status": "contained"},
    "notify": {"channel": "C024BE91L", "ts": "1700000000.000100"},
}


def _calls(lab: Any) -> int:
    return sum(len(sim.calls) for sim in lab.sims.values()) + len(lab.smtp.messages)


def test_a_dry_run_of_the_example_calls_no_vendor_and_returns_its_plan(
    lab: Any, inline_dispatch: InlineDispatcher, time_machine: Any, encryption_keys: list[str],
    bob: Any, commander: Any,
) -> None:  # fmt: skip
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    call_command("import_playbooks", publish=True, verbosity=0)
    lab.reset()

    response = client_for(bob).post("/api/v1/runs/", {
        "playbook": "contain-compromised-host", "inputs": {"host_id": HOST},
        "dry_run": True, "fixtures": FIXTURES,
    }, format="json")  # fmt: skip
    assert response.status_code == 201, response.json()
    run = Run.objects.get(pk=response.json()["id"])
    run = run_to_the_end(run, inline_dispatch, time_machine, approver=commander)

    assert run.status == "succeeded"
    assert _calls(lab) == 0  # not one request, not one e-mail (approval notices included)
    body = client_for(bob).get(f"/api/v1/runs/{run.pk}/").json()
    assert body["dry_run"] is True
    plans = {p["unit"]: p["plan"] for p in body["plan"]}
    assert plans["isolate"] == f"would contain host {HOST} via connection lab-crowdstrike"
    assert plans["notify"] == (
        'would post to #soc: "Host WS-FIN-042 (4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90) is contained: '
        'severity high, file 275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f." '
        "via connection lab-slack"
    )
    assert plans["ticket"].startswith('would open a SEC issue: "Compromised host WS-FIN-042')
    assert plans["collect_evidence"] == (  # it runs a command on the host: planned too
        "would fetch C:\\Users\\Public\\Downloads\\invoice.exe from host "
        f"{HOST} over Real Time Response via connection lab-crowdstrike"
    )
    steps = {s["unit"]: s for s in body["steps"]}
    assert steps["enrich"]["output"] == FIXTURES["enrich"]
    assert steps["patch_fleet[0]"]["output"]["message"].startswith(
        "would launch AWX job"
    )  # util.echo ran
    created = AuditEvent.objects.get(stream=f"run:{run.pk}", kind="run.created")
    assert created.payload["dry_run"] is True
    # Never counted as response.
    metrics = {m.name: m for m in BulwarkCollector().collect()}
    real = {s.labels["status"]: s.value for s in metrics["bulwark_runs"].samples}
    dry = {s.labels["status"]: s.value for s in metrics["bulwark_dry_runs"].samples}
    assert (real["succeeded"], dry["succeeded"]) == (0, 1)


def test_a_draft_can_be_dry_run_but_not_run(bob: Any, inline_dispatch: InlineDispatcher) -> None:
    call_command("import_playbooks", publish=True, verbosity=0)
    playbook = Playbook.objects.get(name="phishing-triage")
    draft = create_version(playbook=playbook, definition=playbook.active_version.definition
                           | {"title": "Draft"}, actor="user:alice")  # fmt: skip
    start = {"playbook": "phishing-triage", "version": draft.number,
             "inputs": {"message_id": "<m@x>", "reporter": "a@example.com"}}  # fmt: skip
    refused = client_for(bob).post("/api/v1/runs/", start, format="json")
    assert refused.status_code == 400
    dry = client_for(bob).post("/api/v1/runs/", {**start, "dry_run": True}, format="json")
    assert dry.status_code == 201, dry.json()
    assert dry.json()["version"] == draft.number
    fixtures = client_for(bob).post("/api/v1/runs/", {**start, "fixtures": {"a": 1}}, format="json")
    assert fixtures.status_code == 400
    assert fixtures.json()["errors"] == [{"path": "fixtures", "message": "needs dry_run"}]
