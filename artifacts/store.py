"""Keeping evidence: hash while writing, store by content, record custody in the audit trail."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction

from artifacts.models import Artifact
from artifacts.storage import get_storage
from audit.events import record_event


class ArtifactTooLarge(Exception):
    """The content passed the size limit for one artifact."""


def save_artifact(
    *,
    chunks: Iterable[bytes],
    filename: str,
    source: str,
    actor: str,
    run_id: int | None,
    step_id: str = "",
    item_index: int = -1,
    content_type: str = "application/octet-stream",
    metadata: dict[str, Any] | None = None,
    max_bytes: int | None = None,
) -> Artifact:
    """Hash `chunks` while writing them to scratch space, keep them under their SHA-256,
    and record the artifact and an `artifact.collected` custody event together."""
    storage = get_storage()
    digest, size = hashlib.sha256(), 0
    fd, scratch = tempfile.mkstemp(dir=storage.scratch_dir())
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ArtifactTooLarge(
                        f"{filename} is over the {max_bytes}-byte artifact limit"
                    )
                digest.update(chunk)
                out.write(chunk)
        sha256 = digest.hexdigest()
        storage.put(sha256, Path(scratch))
    finally:
        Path(scratch).unlink(missing_ok=True)
    return _record(sha256=sha256, size=size, filename=filename, source=source, actor=actor,
                   run_id=run_id, step_id=step_id, item_index=item_index,
                   content_type=content_type, metadata=metadata or {})  # fmt: skip


def _record(*, sha256: str, size: int, actor: str, **fields: Any) -> Artifact:
    key = {k: fields[k] for k in ("run_id", "step_id", "item_index")}
    try:
        with transaction.atomic():
            existing = Artifact.objects.filter(**key, sha256=sha256).first()
            if existing is not None:
                return existing  # a retried attempt collected the same bytes again
            artifact = Artifact.objects.create(sha256=sha256, size=size, **fields)
            record_event(
                stream=f"run:{fields['run_id']}" if fields["run_id"] else "system",
                kind="artifact.collected",
                actor=actor,
                run_id=fields["run_id"],
                step_id=fields["step_id"] or None,
                payload={"artifact": artifact.pk, "sha256": sha256, "size": size,
                         "filename": fields["filename"], "source": fields["source"],
                         "item": fields["item_index"], "metadata": fields["metadata"]},
            )  # fmt: skip
            return artifact
    except IntegrityError:  # two attempts raced; the other one's record stands
        return Artifact.objects.get(**key, sha256=sha256)


def describe(artifact: Artifact) -> dict[str, Any]:
    """What a step's output says about an artifact it kept."""
    return {
        "artifact_id": artifact.pk,
        "sha256": artifact.sha256,
        "size": artifact.size,
        "filename": artifact.filename,
        "content_type": artifact.content_type,
        "url": f"/api/v1/artifacts/{artifact.pk}/content/",
    }


def verify(artifact: Artifact) -> None:
    """Check the stored bytes still hash to the artifact's SHA-256, reading in chunks."""
    digest = hashlib.sha256()
    with get_storage().open(artifact.sha256) as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    if digest.hexdigest() != artifact.sha256:
        raise ArtifactCorrupted(f"artifact {artifact.pk}: stored bytes no longer match its SHA-256")


def read_verified(artifact: Artifact) -> bytes:
    """The artifact's bytes (small ones: tests, JSON outputs), after `verify`."""
    verify(artifact)
    with get_storage().open(artifact.sha256) as f:
        return f.read()


class ArtifactCorrupted(Exception):
    """The stored bytes do not hash to the recorded SHA-256."""


def record_download(artifact: Artifact, *, actor: str) -> None:
    """Custody: who fetched the artifact, and when (the event's time)."""
    with transaction.atomic():
        record_event(
            stream=f"run:{artifact.run_id}" if artifact.run_id else "system",
            kind="artifact.downloaded",
            actor=actor,
            run_id=artifact.run_id,
            step_id=artifact.step_id or None,
            payload={"artifact": artifact.pk, "sha256": artifact.sha256, "size": artifact.size},
        )
