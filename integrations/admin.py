"""Connections in the Django admin: read-only, so every change goes through the audited API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from integrations.models import Connection


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "integration", "base_url", "allow_private_network", "updated_at"]
    list_filter = ["integration", "allow_private_network"]
    search_fields = ["name", "base_url"]
    # Never the ciphertext, let alone the credentials.
    fields = readonly_fields = (
        "integration",
        "name",
        "base_url",
        "allow_private_network",
        "has_credentials",
        "created_by",
        "created_at",
        "updated_at",
    )

    @admin.display(boolean=True)
    def has_credentials(self, obj: Connection) -> bool:
        return obj.has_credentials

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
