"""Alert sources and alerts in the Django admin: read-only, so every change to a source
goes through the audited API (its secret is set and rotated there, never shown), and an
alert stays as intake stored it."""

from __future__ import annotations

from django.contrib import admin

from alerts.models import Alert, AlertSource
from common.admin import ReadOnlyAdmin


@admin.register(AlertSource)
class AlertSourceAdmin(ReadOnlyAdmin):
    list_display = ("slug", "format", "auth", "enabled", "created_at")
    list_filter = ("format", "auth", "enabled")
    fields = readonly_fields = (
        "slug", "title", "format", "auth", "auth_options", "mapping", "max_body_bytes",
        "rate_limit_per_minute", "dedup_window_seconds", "enabled", "created_at", "updated_at",
    )  # fmt: skip


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "source", "title", "severity", "status", "count", "last_seen_at")
    list_filter = ("source", "severity", "status")
    readonly_fields = [f.name for f in Alert._meta.fields]
