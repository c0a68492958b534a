"""No credential ever shows: every example playbook (and one step per other vendor) runs
against the lab, and the API, the logs, step outputs, errors and the audit trail are
scanned for every secret the connections hold and every token the vendors issued."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from artifacts.models import Artifact
from audit.models import AuditEvent
from core.dispatch import InlineDispatcher
from core.models import Attempt, StepRun
from core.runs import start_run
from integrations.lab.connections import ensure_lab_connections, lab_specs
from integrations.models import Connection
from playbooks.models import Playbook
from tests.conftest import client_for
from tests.core.factories import definition, published_version
from tests.integrations.conftest import run_to_the_end

pytestmark = pytest.mark.django_db(transaction=True)

# Identifiers, not secrets: they may appear (a sender address, an app's id).
NOT_SECRET = frozenset({"username", "email", "client_id", "tenant_id"})
HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
OTHER_VENDORS = [
    {"id": "isolate", "action": "defender.isolate_machine",
     "with": {"machine_id": "1e5c0d0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d", "comment": "scan", "poll_interval": 1}},
    {"id": "disconnect", "action": "sentinelone.disconnect_agent",
     "with": {"agent_id": "1600000000000000001", "poll_interval": 1}},
    {"id": "page", "action": "pagerduty.trigger", "with": {"summary": "scan", "source": "lab"}},
    {"id": "card", "action": "teams.post_card", "with": {"title": "scan", "text": "scan"}},
    {"id": "mail", "action": "email.send", "with": {"to": ["soc@corp.example"], "subject": "s", "text": "t"}},
    {"id": "ip", "action": "abuseipdb.check_ip", "with": {"ip": "198.51.100.7"}},
    {"id": "incident", "action": "servicenow.create_incident", "with": {"short_description": "scan"}},
    {"id": "patch", "action": "awx.launch_job", "with": {"job_template": 42, "limit": "web01", "poll_interval": 1}},
]  # fmt: skip


def secrets_of(lab: Any) -> set[str]:
    found: set[str] = set()
    for _vendor, _url, credentials, _options in lab_specs(lab.url, lab.smtp_settings()):
        for name, value in credentials.items():
            if name not in NOT_SECRET:
                found.add(str(value))
        if "password" in credentials:
            pair = f"{credentials.get('username')}:{credentials['password']}"
            found.add(base64.b64encode(pair.encode()).decode())
        if "api_token" in credentials and "email" in credentials:
            pair = f"{credentials['email']}:{credentials['api_token']}"
            found.add(base64.b64encode(pair.encode()).decode())
    # Tokens the vendors issued are secrets too.
    found |= set(lab["crowdstrike"].tokens) | set(lab["defender"].tokens)
    found |= {sig for sig in lab["defender"].packages}
    return {s for s in found if len(s) >= 8}


def test_no_secret_appears_in_the_api_logs_outputs_errors_or_audit(
    lab: Any, inline_dispatch: InlineDispatcher, time_machine: Any, settings: Any, tmp_path: Path,
    encryption_keys: list[str], admin_user: Any, caplog: pytest.LogCaptureFixture,
    commander: Any,
) -> None:  # fmt: skip
    settings.BULWARK_ARTIFACT_DIR = tmp_path
    caplog.set_level(logging.DEBUG)
    for sim in ("awx", "defender", "sentinelone", "crowdstrike"):
        for attr in ("stage_seconds", "step_seconds", "transition_seconds"):
            if hasattr(lab[sim], attr):
                setattr(lab[sim], attr, 0.2)
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    call_command("import_playbooks", publish=True, verbosity=0)
    # Vendors that echo what they were sent: the error texts must come back redacted.
    lab["slack"].inject(
        503, f"upstream rejected token {lab_specs(lab.url)[2][2]['token']}", times=1
    )
    lab["jira"].inject(
        503,
        {
            "errorMessages": [
                f"bad auth {base64.b64encode(b'bulwark@lab.example:lab-jira-api-token').decode()}"
            ]
        },
    )

    inputs = {
        "contain-compromised-host": {"host_id": HOST},
        "phishing-triage": {"message_id": "<m1@corp.example>", "reporter": "jdoe@corp.example"},
        "patch-vulnerable-server": {"cve": "CVE-2024-3094", "servers": ["web-01"]},
    }
    runs = [start_run(playbook=Playbook.objects.get(name=name), inputs=given, actor="user:root")
            for name, given in inputs.items()]  # fmt: skip
    runs.append(start_run(playbook=published_version(definition(*OTHER_VENDORS, name="every-vendor")).playbook,
                          inputs={}, actor="user:root"))  # fmt: skip
    finished = [run_to_the_end(run, inline_dispatch, time_machine, approver=commander)
                for run in runs]  # fmt: skip
    assert [r.status for r in finished] == ["succeeded"] * 4, [
        (
            r.playbook.name,
            list(
                StepRun.objects.filter(run=r).exclude(status="succeeded").values("step_id", "error")
            ),
        )
        for r in finished
    ]
    secrets = secrets_of(lab)
    assert len(secrets) >= 12

    api = client_for(admin_user)
    pages = ["/api/v1/runs/", "/api/v1/connections/", "/api/v1/integrations/", "/api/v1/artifacts/",
             "/api/v1/audit/?page_size=1000"]  # fmt: skip
    pages += [f"/api/v1/runs/{r.pk}/" for r in finished]
    pages += [f"/api/v1/connections/{c.name}/" for c in Connection.objects.all()]
    places = {page: api.get(page).content.decode() for page in pages}
    places["logs"] = caplog.text
    places["units"] = json.dumps(
        list(StepRun.objects.values("inputs", "output", "error", "progress", "result"))
    )
    places["attempts"] = json.dumps(
        list(Attempt.objects.values("error", "worker", "idempotency_key"))
    )
    places["audit"] = json.dumps(list(AuditEvent.objects.values("payload", "actor")))
    places["artifacts"] = json.dumps(
        list(Artifact.objects.values("source", "metadata", "filename"))
    )
    leaks = {
        (where, secret) for where, text in places.items() for secret in secrets if secret in text
    }
    assert leaks == set()
    # The scan looked where the failures were: the echoed errors are on record, redacted.
    assert "[redacted]" in places["attempts"]
