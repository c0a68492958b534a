"""A run's evidence bundle: its audit stream with the digests that sign it (audit.bundles),
the playbook version's definition, its artifacts' hashes and a readable report."""

from __future__ import annotations

import json
from typing import IO, Any

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from artifacts.models import Artifact
from audit.bundles import write_bundle
from audit.events import record_event
from audit.models import AuditEvent
from core.models import Run

# What the report says of a decision, beside its actor and time.
DECISION_KINDS = ("approval.decision", "approval.approved", "approval.rejected",
                  "approval.timed_out", "approval.escalated")  # fmt: skip


def subject_of(run: Run) -> dict[str, Any]:
    version = run.version
    return {
        "run": run.pk,
        "playbook": run.playbook.name,
        "version": version.number,
        "definition_sha256": version.content_hash,
        "status": run.status,
        "actor": run.actor,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _artifacts(run: Run) -> list[dict[str, Any]]:
    rows = Artifact.objects.filter(run_id=run.pk).order_by("id")
    return [{"id": a.pk, "sha256": a.sha256, "size": a.size, "filename": a.filename,
             "content_type": a.content_type, "step_id": a.step_id, "item_index": a.item_index,
             "source": a.source, "created_at": a.created_at.isoformat()} for a in rows]  # fmt: skip


def _timeline(run: Run) -> list[dict[str, Any]]:
    rows = []
    for event in AuditEvent.objects.filter(stream=f"run:{run.pk}").order_by("seq").iterator():
        payload = event.payload or {}
        rows.append({
            "seq": event.seq, "at": event.created_at, "actor": event.actor, "kind": event.kind,
            "step": event.step_id or "", "decision": event.kind in DECISION_KINDS,
            "comment": payload.get("comment") if isinstance(payload, dict) else None,
            "details": json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False),
        })  # fmt: skip
    return rows


def write_run_bundle(run: Run, target: IO[bytes], *, actor: str) -> dict[str, Any]:
    """Write `run`'s evidence bundle to `target`; the export is an audit event of the run."""
    with transaction.atomic():
        record_event(stream=f"run:{run.pk}", kind="audit.bundle_exported", actor=actor,
                     run_id=run.pk, playbook=run.playbook.name)  # fmt: skip
    subject = subject_of(run)
    artifacts = _artifacts(run)
    report = render_to_string("evidence/report.html", {
        "subject": subject, "timeline": _timeline(run), "artifacts": artifacts,
        "made_at": timezone.now(), "actor": actor,
    })  # fmt: skip
    files = {
        "definition.json": json.dumps(run.version.definition, indent=2, sort_keys=True).encode(),
        "artifacts.json": json.dumps(artifacts, indent=2).encode(),
        "report.html": report.encode(),
    }
    return write_bundle(target, stream=f"run:{run.pk}", subject=subject, files=files,
                        created_by=actor)  # fmt: skip
