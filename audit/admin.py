"""Audit events in the admin: readable, never addable, changeable or deletable."""

from __future__ import annotations

from django.contrib import admin

from audit.models import AuditEvent
from common.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "stream", "seq", "kind", "actor", "run_id", "step_id")
    list_filter = ("kind",)
    search_fields = ("stream", "actor", "playbook")
    ordering = ("-id",)
    readonly_fields = tuple(field.name for field in AuditEvent._meta.fields)
