from django.contrib import admin

from artifacts.models import Artifact


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin[Artifact]):
    list_display = ("id", "filename", "sha256", "size", "run_id", "step_id", "created_at")
    search_fields = ("sha256", "filename", "source")
    readonly_fields = [f.name for f in Artifact._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
