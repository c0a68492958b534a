from django.contrib import admin

from alerts.models import Alert, AlertSource


@admin.register(AlertSource)
class AlertSourceAdmin(admin.ModelAdmin[AlertSource]):
    list_display = ("slug", "format", "auth", "enabled", "created_at")
    exclude = ("secrets_encrypted",)  # set and rotate through alerts.sources, never shown


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin[Alert]):
    list_display = ("id", "source", "title", "severity", "status", "count", "last_seen_at")
    list_filter = ("source", "severity", "status")
    readonly_fields = [f.name for f in Alert._meta.fields]
