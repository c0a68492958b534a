"""The API shape of an audit event: every field, read-only."""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    class Meta:
        model = AuditEvent
        fields = (
            "id",
            "stream",
            "seq",
            "created_at",
            "actor",
            "kind",
            "run_id",
            "step_id",
            "playbook",
            "payload",
            "prev_hash",
            "hash",
        )
        read_only_fields = fields
