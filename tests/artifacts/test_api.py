"""The artifacts API: hash headers, custody on download, integrity, who may download."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from artifacts.models import Artifact
from artifacts.storage import get_storage
from artifacts.store import save_artifact
from audit.models import AuditEvent
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
CONTENT = b"evidence bytes " * 1000


@pytest.fixture
def artifact(settings: Any, tmp_path: Path) -> Artifact:
    settings.BULWARK_ARTIFACT_DIR = tmp_path
    return save_artifact(chunks=[CONTENT[:7000], CONTENT[7000:]], filename="../../etc/x.bin", source="test",
                         actor="user:alice", run_id=3, step_id="collect")  # fmt: skip


def test_content_streams_with_its_hash_and_the_download_is_a_custody_event(
    artifact: Artifact, bob: Any
) -> None:
    response = client_for(bob).get(f"/api/v1/artifacts/{artifact.pk}/content/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == CONTENT
    digest = hashlib.sha256(CONTENT).digest()
    assert response["X-Content-SHA256"] == digest.hex() == artifact.sha256
    assert response["Repr-Digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"
    assert response["Content-Disposition"] == 'attachment; filename="x.bin"'
    event = AuditEvent.objects.get(kind="artifact.downloaded")
    assert (event.actor, event.run_id, event.payload["sha256"]) == ("user:bob", 3, artifact.sha256)


def test_a_tampered_file_is_refused_not_served(artifact: Artifact, bob: Any) -> None:
    path = get_storage().path(artifact.sha256)  # type: ignore[attr-defined]
    path.chmod(0o640)
    path.write_bytes(b"tampered")
    response = client_for(bob).get(f"/api/v1/artifacts/{artifact.pk}/content/")
    assert response.status_code == 500
    assert "no longer match" in response.json()["error"]
    assert not AuditEvent.objects.filter(kind="artifact.downloaded").exists()


def test_viewers_see_the_record_but_cannot_download_the_bytes(
    artifact: Artifact, dave: Any
) -> None:
    assert (
        client_for(dave).get(f"/api/v1/artifacts/{artifact.pk}/").json()["sha256"]
        == artifact.sha256
    )
    assert client_for(dave).get(f"/api/v1/artifacts/{artifact.pk}/content/").status_code == 403


def test_the_same_bytes_for_the_same_step_are_one_artifact(artifact: Artifact) -> None:
    again = save_artifact(chunks=[CONTENT], filename="x.bin", source="test", actor="user:alice",
                          run_id=3, step_id="collect")  # fmt: skip
    assert again.pk == artifact.pk
    assert Artifact.objects.count() == 1
    assert AuditEvent.objects.filter(kind="artifact.collected").count() == 1
