"""Audit events: append-only, hash-chained per stream (SPEC §8)."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models

from audit.hashing import canonical_json, chain_hash, format_timestamp


class AuditImmutableError(Exception):
    """Raised on any attempt to change or delete a recorded audit event."""


def _refuse(what: str) -> NoReturn:
    raise AuditImmutableError(f"audit events are append-only: {what} is refused")


class AppendOnlyQuerySet[M: models.Model](models.QuerySet[M]):
    """Bulk update and delete are refused."""

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse("update")

    def delete(self) -> NoReturn:
        _refuse("delete")


class AppendOnly(models.Model):
    """A row that is written once and never changed or deleted."""

    class Meta:
        abstract = True
        base_manager_name = "objects"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            _refuse("save() of an existing record")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("delete()")


class AuditEventQuerySet(AppendOnlyQuerySet["AuditEvent"]):
    """Read vocabulary for audit events."""

    def for_run(self, run_id: int) -> AuditEventQuerySet:
        return self.filter(run_id=run_id)


class AuditEvent(AppendOnly):
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

    class Meta(AppendOnly.Meta):
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="audit_event_stream_seq_unique")
        ]
        indexes = [models.Index(fields=["playbook", "id"], name="audit_event_playbook_idx")]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.kind}"

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
    # When the head last moved, in the terms a digest's watermark is in (audit.digests):
    # the writing transaction's id on PostgreSQL, the last event's id on SQLite. Not
    # indexed, so that moving a head stays a HOT update.
    changed = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.stream}@{self.seq}"


class AuditDigest(AppendOnly):
    """A signed statement of every stream head that moved since the previous digest.

    The signed document (audit.digests.digest_document) is rebuilt from these columns and
    the digest's heads; `hash` is its SHA-256 and the next digest's `previous_hash`.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField()
    watermark = models.BigIntegerField()
    head_count = models.PositiveIntegerField()
    heads_root = models.CharField(max_length=64)
    previous_hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=100)

    objects = AppendOnlyQuerySet["AuditDigest"].as_manager()

    def __str__(self) -> str:
        return f"digest #{self.seq}"


class AuditDigestHead(AppendOnly):
    """One stream head a digest lists: a leaf of the digest's Merkle tree, in stream order."""

    digest_seq = models.PositiveBigIntegerField()
    position = models.PositiveIntegerField()
    stream = models.CharField(max_length=200)
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet["AuditDigestHead"].as_manager()

    class Meta(AppendOnly.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["digest_seq", "position"], name="audit_digest_head_position_unique"
            )
        ]
        indexes = [
            models.Index(fields=["stream", "digest_seq"], name="audit_digest_head_stream_idx")
        ]

    def __str__(self) -> str:
        return f"digest #{self.digest_seq}: {self.stream}@{self.seq}"

    def leaf(self) -> bytes:
        """The bytes this head is as a Merkle leaf (before leaf hashing)."""
        return head_leaf(self.stream, self.seq, self.hash)


def head_leaf(stream: str, seq: int, digest: str) -> bytes:
    return canonical_json({"stream": stream, "seq": seq, "hash": digest}).encode()


class AuditTombstone(AppendOnly):
    """A signed statement that a stream's events `from_seq`..`through_seq` were pruned.

    It stands in for them at verification: the stream's next event must follow `hash`
    (the last pruned event's), and the previous tombstone's `hash` is this one's
    `prev_hash`, so a stream's tombstones chain too (audit.tombstones).
    """

    stream = models.CharField(max_length=200)
    from_seq = models.PositiveBigIntegerField()
    through_seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)  # the hash the first pruned event followed
    hash = models.CharField(max_length=64)  # the last pruned event's hash
    event_count = models.PositiveBigIntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    pruned_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=100)

    objects = AppendOnlyQuerySet["AuditTombstone"].as_manager()

    class Meta(AppendOnly.Meta):
        constraints = [
            # Two prunes of one stream at once cannot both start where the last one ended.
            models.UniqueConstraint(
                fields=["stream", "from_seq"], name="audit_tombstone_stream_from_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.stream} pruned #{self.from_seq}..#{self.through_seq}"


class LegalHold(models.Model):
    """A run whose audit trail retention must not prune, until the hold is released."""

    # A plain column, as on AuditEvent: audit does not depend on the engine's tables.
    run_id = models.BigIntegerField(unique=True)
    reason = models.CharField(max_length=500)
    placed_by = models.CharField(max_length=200)
    placed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"legal hold on run {self.run_id}"
