"""Audit events in the admin: readable, never addable, changeable or deletable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent

# ModelAdmin is generic only in the type stubs; subscripting it at runtime raises TypeError.
if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[AuditEvent]
else:
    _ModelAdmin = admin.ModelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(_ModelAdmin):
    list_display = ("id", "created_at", "stream", "seq", "kind", "actor", "run_id", "step_id")
    list_filter = ("kind",)
    search_fields = ("stream", "actor", "playbook")
    ordering = ("-id",)
    readonly_fields = tuple(field.name for field in AuditEvent._meta.fields)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
