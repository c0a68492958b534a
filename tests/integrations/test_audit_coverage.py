"""A whole incident, alert to evidence bundle, and the audit trail it leaves: every kind
of event expected is there, listed in audit.kinds, with its actor, time and references,
and the trail verifies, signed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from alerts.sources import create_source
from audit.bundle_verify import verify_bundle
from audit.digests import make_digest
from audit.kinds import KINDS
from audit.models import AuditEvent
from audit.signing import current_public_key
from audit.verify import verify_trail
from core.dispatch import InlineDispatcher
from core.models import Run
from integrations.lab.connections import ensure_lab_connections
from tests.conftest import client_for
from tests.core.factories import published_version
from tests.integrations.conftest import run_to_the_end

pytestmark = pytest.mark.django_db(transaction=True)
HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
SECRET = "edr-hook-secret-0123456789abcdef"
PAYLOADS = Path(__file__).resolve().parents[1] / "alerts" / "payloads"

# Enrich (retried once), approve, contain (undone when a later step fails), collect
# evidence, then open a ticket, which Jira refuses for good.
PLAYBOOK: dict[str, Any] = {
    "name": "coverage-contain",
    "inputs": {"host_id": {"type": "string", "required": True},
               "sha256": {"type": "string", "required": True}},
    "triggers": [{"source": "edr", "if": "alert.severity in ['high', 'critical']",
                  "inputs": {"host_id": "{{ alert.raw.data['detections.device_id'] }}",
                             "sha256": "{{ alert.raw.data['detections.sha256'] }}"}}],
    "on_failure": "compensate",
    "steps": [
        {"id": "enrich", "action": "virustotal.file_report", "with": {"hash": "{{ inputs.sha256 }}"},
         "retry": {"attempts": 3, "backoff": "1s"}},
        {"id": "approve", "needs": ["enrich"], "approval": {"approvers": ["incident-commanders"]}},
        {"id": "isolate", "needs": ["approve"], "action": "crowdstrike.contain_host",
         "with": {"device_id": "{{ inputs.host_id }}", "poll_interval": 1},
         "compensate": {"action": "crowdstrike.lift_containment",
                        "with": {"device_id": "{{ inputs.host_id }}", "poll_interval": 1}}},
        {"id": "collect", "needs": ["isolate"], "action": "crowdstrike.rtr_get_file",
         "with": {"device_id": "{{ inputs.host_id }}", "file_path": "C:\\\\invoice.exe",
                  "poll_interval": 1}},
        {"id": "ticket", "needs": ["collect"], "action": "jira.create_issue",
         "with": {"project": "SEC", "issue_type": "Incident", "summary": "contained"}},
    ],
}  # fmt: skip

# What the incident must leave in its run's stream.
EXPECTED = (
    "run.created", "run.started", "step.queued", "attempt.failed", "step.retry_scheduled",
    "step.retrying", "attempt.succeeded", "step.succeeded", "approval.requested",
    "approval.decision", "approval.approved", "run.waiting_approval", "run.running",
    "attempt.waiting", "step.polling", "artifact.collected", "step.failed", "run.compensating",
    "compensation.succeeded", "run.compensated", "artifact.downloaded", "audit.bundle_exported",
)  # fmt: skip


def test_an_incident_leaves_every_expected_kind_with_who_when_and_what(
    lab: Any, inline_dispatch: InlineDispatcher, time_machine: Any, settings: Any,
    tmp_path: Path, encryption_keys: list[str], carol: Any, commander: Any, bob: Any,
) -> None:  # fmt: skip
    settings.BULWARK_ARTIFACT_DIR = tmp_path
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    published_version(PLAYBOOK)
    create_source(
        slug="edr", format="crowdstrike", auth="bearer", secret=SECRET, actor="user:alice"
    )
    lab["virustotal"].inject(503, times=1)
    lab["jira"].inject(400, {"errorMessages": ["Project SEC is closed"], "errors": {}}, times=10,
                       method="POST", path="/rest/api/3/issue")  # fmt: skip

    answer = Client().post("/api/v1/hooks/edr/", (PAYLOADS / "crowdstrike_detection.json").read_bytes(),
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {SECRET}"})  # fmt: skip
    assert answer.status_code == 202, answer.content
    (run_id,) = answer.json()["runs"]
    run = run_to_the_end(Run.objects.get(pk=run_id), inline_dispatch, time_machine,
                         approver=commander)  # fmt: skip
    assert run.status == "compensated"
    artifact = client_for(bob).get(f"/api/v1/runs/{run.pk}/").json()["artifacts"][0]
    assert client_for(bob).get(artifact["url"]).status_code == 200
    bundle = client_for(carol).get(f"/api/v1/runs/{run.pk}/evidence/")
    assert bundle.status_code == 200

    events = list(AuditEvent.objects.filter(stream=f"run:{run.pk}").order_by("seq"))
    kinds = {event.kind for event in events}
    assert set(EXPECTED) <= kinds, sorted(set(EXPECTED) - kinds)
    for event in events:
        listed = KINDS.get(event.kind)
        assert listed is not None, f"{event.kind} is not in audit.kinds"
        assert listed.stream == "run"
        assert set(event.payload) <= set(listed.fields), (event.kind, sorted(event.payload))
        assert event.run_id == run.pk
        assert event.created_at is not None
        assert event.actor
        if listed.step:
            assert event.step_id, event.kind
            assert event.payload.get("unit", event.step_id).startswith(event.step_id)
    by_kind = {event.kind: event for event in events}
    alert_id = answer.json()["alert"]
    assert by_kind["run.created"].actor == f"alert:{alert_id}"  # the alert that started it
    assert by_kind["run.created"].payload["inputs"]["host_id"] == HOST
    decision = by_kind["approval.decision"]
    assert (decision.actor, decision.step_id, decision.payload["decision"]) == (
        "user:ic",
        "approve",
        "approve",
    )
    assert by_kind["step.retry_scheduled"].step_id == "enrich"
    assert by_kind["step.failed"].step_id == "ticket"
    assert by_kind["compensation.succeeded"].payload["unit"] == "isolate:compensate"
    assert by_kind["artifact.downloaded"].actor == "user:bob"
    assert by_kind["audit.bundle_exported"].actor == "user:carol"
    assert lab["crowdstrike"].devices[HOST]["status"] == "normal"  # containment lifted

    make_digest()
    assert verify_trail().ok
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"".join(bundle.streaming_content))
    assert verify_bundle(path, current_public_key()).ok
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    assert manifest["subject"]["status"] == "compensated"
