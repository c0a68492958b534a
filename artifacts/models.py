"""Artifacts: evidence and large outputs, kept by content (SHA-256) with their provenance."""

from __future__ import annotations

from django.db import models


class Artifact(models.Model):
    """One stored file: what it is (hash, size), where it came from, and for which step.

    The bytes live in the storage backend under their SHA-256; this row is the record of
    custody. Runs are referred to by id: this app sits below the engine's.
    """

    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    # Who produced it, e.g. "crowdstrike.rtr_get_file host 4d5e… C:\\x.exe".
    source = models.CharField(max_length=500)
    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    step_id = models.CharField(max_length=63, blank=True, default="")
    item_index = models.IntegerField(default=-1)
    # Vendor-side facts about the file (its own hash, host, path), never credentials.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # Storing the same evidence twice for a step (a retried attempt) keeps one record.
            models.UniqueConstraint(
                fields=["run_id", "step_id", "item_index", "sha256"], name="artifact_once_per_step"
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.sha256[:12]}…, {self.size} bytes)"
