"""A run's evidence bundle over the API and the CLI: it verifies offline, and says what
happened in a report a person can read."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.bundle_verify import verify_bundle
from audit.models import AuditEvent
from audit.signing import current_public_key
from core.dispatch import InlineDispatcher
from core.models import Run
from tests.conftest import client_for
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(bob: User, inline_dispatch: InlineDispatcher) -> Run:
    inputs = {"note": {"type": "string", "required": True}}
    published_version(
        definition(echo("a"), echo("b", "a"), name="evidence-playbook", inputs=inputs)
    )
    # An input an alert could have filled: it lands in run.created's payload, and the report.
    body = {"playbook": "evidence-playbook", "inputs": {"note": "<script>alert(1)</script>"}}
    response = client_for(bob).post("/api/v1/runs/", body, format="json")
    assert response.status_code == 201, response.json()
    inline_dispatch.drain()
    found = Run.objects.get(pk=response.json()["id"])
    assert found.status == "succeeded"
    return found


def test_an_auditor_downloads_a_bundle_that_verifies_offline(
    run: Run, carol: User, tmp_path: Path
) -> None:
    response = client_for(carol).get(f"/api/v1/runs/{run.pk}/evidence/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'filename="run-{run.pk}-evidence.zip"' in response["Content-Disposition"]
    path = tmp_path / "bundle.zip"
    path.write_bytes(b"".join(response.streaming_content))
    result = verify_bundle(path, current_public_key())
    assert result.ok, result.problem
    events = AuditEvent.objects.filter(stream=f"run:{run.pk}").count()
    assert result.events_checked == events  # the export's own event included
    bundle = zipfile.ZipFile(path)
    manifest = json.loads(bundle.read("manifest.json"))
    assert manifest["subject"]["run"] == run.pk
    assert manifest["subject"]["definition_sha256"] == run.version.content_hash
    assert manifest["created_by"] == "user:carol"
    assert json.loads(bundle.read("definition.json"))["name"] == "evidence-playbook"
    assert json.loads(bundle.read("artifacts.json")) == []
    report = bundle.read("report.html").decode()
    assert f"Run {run.pk}: evidence-playbook v1" in report
    assert "run.succeeded" in report
    assert "audit.bundle_exported" in report
    assert "<script>" not in report
    assert "&lt;script&gt;" in report  # payloads stay text
    assert "default-src 'none'" in report
    assert AuditEvent.objects.filter(stream=f"run:{run.pk}", kind="audit.bundle_exported",
                                     actor="user:carol").count() == 1  # fmt: skip


def test_a_viewer_may_not_export_evidence(run: Run, dave: User) -> None:
    assert client_for(dave).get(f"/api/v1/runs/{run.pk}/evidence/").status_code == 403


def test_the_command_writes_a_bundle(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.zip"
    call_command("audit_bundle", str(run.pk), "--output", str(target))
    assert "evidence bundle written" in capsys.readouterr().out
    assert verify_bundle(target, current_public_key()).ok
    with pytest.raises(CommandError, match="there is no run 999999"):
        call_command("audit_bundle", "999999", "--output", str(tmp_path / "none.zip"))
    assert zipfile.is_zipfile(io.BytesIO(target.read_bytes()))
