"""Audit events: append-only, hash-chained per stream (SPEC §8)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from audit.hashing import chain_hash, format_timestamp


class AuditImmutableError(Exception):
    """Raised on any attempt to change or delete a recorded audit event."""


def _refuse(what: str) -> NoReturn:
    raise AuditImmutableError(f"audit events are append-only: {what} is refused")


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Read vocabulary for audit events; bulk update and delete are refused."""

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse("update")

    def delete(self) -> NoReturn:
        _refuse("delete")

    def for_run(self, run_id: int) -> AuditEventQuerySet:
        return self.filter(run_id=run_id)


class AuditEvent(models.Model):
    """One thing that happened, linked to the previous event of its stream by hash."""

    stream = models.CharField(max_length=200)
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=200)
    kind = models.CharField(max_length=100)
    # A plain column, not a foreign key: audit is a leaf app and outlives the rows it names.
    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # None ("not about a step") is hashed differently from "", so NULL is kept distinct.
    step_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    playbook = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    payload = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="audit_event_stream_seq_unique")
        ]
        indexes = [models.Index(fields=["playbook", "id"], name="audit_event_playbook_idx")]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            _refuse("save() of an existing event")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("delete()")

    def hashed_document(self) -> dict[str, Any]:
        """The fields the chain hash covers, as JSON values."""
        return {
            "stream": self.stream,
            "seq": self.seq,
            "created_at": format_timestamp(self.created_at),
            "actor": self.actor,
            "kind": self.kind,
            "run_id": self.run_id,
            "step_id": self.step_id,
            "playbook": self.playbook,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        """The SHA-256 this event's hash must equal."""
        return chain_hash(self.hashed_document())


class AuditStreamHead(models.Model):
    """The last sequence number and hash of a stream; its row lock serialises appends."""

    stream = models.CharField(max_length=200, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.stream}@{self.seq}"
