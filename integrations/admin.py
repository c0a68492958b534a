"""Connections in the Django admin: read-only, so every change goes through the audited API."""

from __future__ import annotations

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from integrations.models import Connection


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
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
