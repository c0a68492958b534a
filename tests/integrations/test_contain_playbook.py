"""The contain-compromised-host example, end to end against the lab's simulators."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from artifacts.models import Artifact
from audit.models import AuditEvent
from audit.verify import verify_chains
from core.dispatch import InlineDispatcher
from core.runs import start_run
from integrations.lab.connections import ensure_lab_connections
from playbooks.models import Playbook
from tests.conftest import client_for
from tests.integrations.conftest import run_to_the_end

pytestmark = pytest.mark.django_db(transaction=True)
HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"


def test_the_example_contains_collects_notifies_and_tickets_against_the_lab(
    lab: Any, inline_dispatch: InlineDispatcher, time_machine: Any, settings: Any,
    tmp_path: Path, encryption_keys: list[str], bob: Any, carol: Any, commander: Any,
) -> None:  # fmt: skip
    settings.BULWARK_ARTIFACT_DIR = tmp_path
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    call_command("import_playbooks", publish=True, verbosity=0)
    run = start_run(playbook=Playbook.objects.get(name="contain-compromised-host"),
                    inputs={"host_id": HOST}, actor="user:bob")  # fmt: skip
    run = run_to_the_end(run, inline_dispatch, time_machine, approver=commander)
    assert run.status == "succeeded"

    falcon = lab["crowdstrike"]
    assert len(falcon.requests("POST", "/oauth2/token")) == 1  # one token, reused by every step
    (contain,) = falcon.requests("POST", "/devices/entities/devices-actions/v2")
    assert contain.query == {"action_name": "contain"}
    assert contain.json == {"ids": [HOST]}
    assert falcon.devices[HOST]["status"] == "contained"

    detail = client_for(bob).get(f"/api/v1/runs/{run.pk}/").json()
    steps = {s["unit"]: s for s in detail["steps"]}
    assert steps["isolate"]["output"]["status"] == "contained"
    polls = [a["outcome"] for a in steps["isolate"]["attempt_history"]]
    assert polls[0] == "waiting"
    assert polls[-1] == "succeeded"

    (evidence,) = detail["artifacts"]
    artifact = Artifact.objects.get(pk=evidence["artifact_id"])
    assert steps["collect_evidence"]["output"]["sha256"] == artifact.sha256
    content = client_for(bob).get(evidence["url"])
    assert content.status_code == 200
    assert (
        content["X-Content-SHA256"]
        == hashlib.sha256(b"".join(content.streaming_content)).hexdigest()
        == artifact.sha256
    )

    request, message = lab["slack"].messages  # the approval request, then the notice
    assert request["channel"] == "C0IR"
    assert "Contain host" in request["text"]
    assert message["channel"] == "C0SOC"
    assert "WS-FIN-042" in message["text"]
    assert steps["notify"]["output"]["ts"] == message["ts"]
    (issue,) = lab["jira"].issues.values()
    assert steps["ticket"]["output"]["key"] == issue["key"] == "SEC-1"
    assert artifact.sha256 in issue["fields"]["description"]["content"][1]["content"][0]["text"]

    audit = client_for(carol).get(f"/api/v1/audit/?run={run.pk}&page_size=500").json()
    kinds = [e["kind"] for e in audit.get("results", audit)]
    for kind in ("attempt.waiting", "step.polling", "artifact.collected", "artifact.downloaded"):
        assert kind in kinds
    assert kinds.count("step.succeeded") == 7  # six steps and the one for_each item
    assert verify_chains().ok
    assert AuditEvent.objects.filter(run_id=run.pk, kind="artifact.collected").count() == 1
