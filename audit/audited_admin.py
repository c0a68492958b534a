"""The admin base for settings people change by hand (budgets, chat identities): every
save and delete is an audit event on the system stream, in the same transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import HttpRequest

from audit.events import record_event

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


class AuditedAdmin(_ModelAdmin):
    """Subclasses name the event prefix (`audit_kind`, e.g. "budget")."""

    audit_kind = "setting"

    def _record(self, request: HttpRequest, obj: Any, verb: str) -> None:
        values = {k: v for k, v in model_to_dict(obj).items() if k != "id"}
        record_event(
            stream="system",
            kind=f"{self.audit_kind}.{verb}",
            actor=f"user:{request.user.get_username()}",
            payload={"id": obj.pk, "values": values},
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            self._record(request, obj, "changed" if change else "created")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            self._record(request, obj, "deleted")
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            for obj in queryset:
                self._record(request, obj, "deleted")
            super().delete_queryset(request, queryset)
