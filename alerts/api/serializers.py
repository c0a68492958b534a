"""Shapes of the alert-sources and alerts API (secrets go in, never out)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from alerts.models import Alert, AlertSource, Schedule


class SourceInputSerializer(serializers.Serializer[Any]):
    slug = serializers.SlugField(max_length=63)
    title = serializers.CharField(max_length=200, required=False, default="")
    format = serializers.ChoiceField(choices=AlertSource.Format.choices, default="generic")
    auth = serializers.ChoiceField(choices=AlertSource.Auth.choices)
    secret = serializers.CharField(write_only=True, min_length=16, max_length=500)
    auth_options = serializers.DictField(required=False, default=dict)
    mapping = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    max_body_bytes = serializers.IntegerField(
        required=False, min_value=1024, max_value=16 * 1024 * 1024
    )
    dedup_window_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=30 * 86400
    )
    rate_limit_per_minute = serializers.IntegerField(required=False, allow_null=True, min_value=1)


class RotateSerializer(serializers.Serializer[Any]):
    secret = serializers.CharField(write_only=True, min_length=16, max_length=500)


class SourceSerializer(serializers.ModelSerializer[AlertSource]):
    hook_url = serializers.SerializerMethodField()

    class Meta:
        model = AlertSource
        fields = ["slug", "title", "format", "auth", "auth_options", "mapping", "max_body_bytes",
                  "dedup_window_seconds", "rate_limit_per_minute", "enabled", "hook_url", "created_at",
                  "updated_at"]  # fmt: skip
        read_only_fields = fields

    def get_hook_url(self, source: AlertSource) -> str:
        return f"/api/v1/hooks/{source.slug}/"


class AlertSerializer(serializers.ModelSerializer[Alert]):
    source = serializers.CharField(source="source.slug")  # type: ignore[assignment] # a field named like Field.source
    runs = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "source", "title", "severity", "status", "external_id", "occurred_at", "entities",
                  "count", "first_seen_at", "last_seen_at", "triggered_at", "trigger_errors", "runs", "raw"]  # fmt: skip
        read_only_fields = fields

    def get_runs(self, alert: Alert) -> list[int]:
        """The runs its triggers started."""
        return [link.run_id for link in alert.runs.all()]


class ScheduleSerializer(serializers.ModelSerializer[Schedule]):
    playbook = serializers.CharField(source="version.playbook.name")
    version = serializers.IntegerField(source="version.number")
    last_run: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )

    class Meta:
        model = Schedule
        fields = ["playbook", "version", "trigger_index", "cron", "next_due_at", "last_fired_at", "last_run",
                  "missed_skipped"]  # fmt: skip
        read_only_fields = fields
