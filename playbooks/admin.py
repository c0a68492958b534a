"""Admin: playbooks and their versions are read here; they change through playbooks.versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.permissions import actor_for
from playbooks.models import Playbook, PlaybookVersion
from playbooks.versions import DefinitionInvalid, publish_version

# The admin classes are generic only in the type stubs; subscripting them at runtime fails.
if TYPE_CHECKING:
    _VersionInline = admin.TabularInline[PlaybookVersion, Playbook]
    _PlaybookAdmin = admin.ModelAdmin[Playbook]
    _VersionAdmin = admin.ModelAdmin[PlaybookVersion]
else:
    _VersionInline = admin.TabularInline
    _PlaybookAdmin = _VersionAdmin = admin.ModelAdmin


class VersionInline(_VersionInline):
    model = PlaybookVersion
    fields = ("number", "state", "content_hash", "author", "created_at", "published_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Playbook | None = None) -> bool:
        return False


@admin.register(Playbook)
class PlaybookAdmin(_PlaybookAdmin):
    list_display = ["name", "title", "created_at"]
    search_fields = ["name", "title"]
    readonly_fields = ["name", "created_at", "created_by"]
    inlines = [VersionInline]


@admin.register(PlaybookVersion)
class PlaybookVersionAdmin(_VersionAdmin):
    list_display = ["playbook", "number", "state", "author", "created_at", "published_at"]
    list_filter = ["state"]
    search_fields = ["playbook__name"]
    actions = ["publish"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: PlaybookVersion | None = None
    ) -> list[str]:
        # Versions are immutable records; they are created and published, never edited.
        return [field.name for field in PlaybookVersion._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: PlaybookVersion | None = None
    ) -> bool:
        return False

    @admin.action(description="Publish the selected version")
    def publish(self, request: HttpRequest, queryset: QuerySet[PlaybookVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to publish.", messages.ERROR)
            return
        version = queryset.get()
        try:
            publish_version(version=version, user=request.user, actor=actor_for(request.user))
        except DefinitionInvalid as exc:
            self.message_user(request, f"Not published: {exc}", messages.ERROR)
            return
        self.message_user(request, f"Published {version.playbook.name} v{version.number}.")
