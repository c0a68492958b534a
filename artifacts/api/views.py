"""Artifacts API: metadata for any role; the bytes, with their hash in headers, for
analysts, auditors and admins, each download a custody event."""

from __future__ import annotations

import base64
from typing import Any

from django.http import FileResponse
from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts import roles
from accounts.permissions import RolePermission, actor_for, has_role
from artifacts.models import Artifact
from artifacts.storage import get_storage
from artifacts.store import ArtifactCorrupted, record_download, verify


class ArtifactSerializer(serializers.ModelSerializer[Artifact]):
    class Meta:
        model = Artifact
        fields = ["id", "sha256", "size", "filename", "content_type", "source", "run_id",
                  "step_id", "item_index", "metadata", "created_at"]  # fmt: skip
        read_only_fields = fields


class ArtifactFilter(filters.FilterSet):
    run = filters.NumberFilter(field_name="run_id")
    sha256 = filters.CharFilter(field_name="sha256")

    class Meta:
        model = Artifact
        fields = ["run", "step_id", "sha256"]


class CanDownloadEvidence(BasePermission):
    message = "downloading evidence needs the analyst, auditor or admin role"

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "action", None) != "content":
            return True
        return has_role(request.user, roles.ANALYST, roles.AUDITOR)


class IntegrityFailure(APIException):
    status_code = 500
    default_code = "artifact_corrupted"


class ArtifactViewSet(viewsets.ReadOnlyModelViewSet[Artifact]):
    queryset = Artifact.objects.order_by("id")
    serializer_class = ArtifactSerializer
    filterset_class = ArtifactFilter
    permission_classes = (RolePermission, CanDownloadEvidence)

    @action(detail=True, methods=["get"])
    def content(self, request: Request, pk: str | None = None) -> FileResponse:
        """The artifact's bytes; `X-Content-SHA256` and `Repr-Digest` (RFC 9530) carry the
        hash they were verified against just now."""
        artifact = self.get_object()
        try:
            verify(artifact)  # in chunks; the bytes are then streamed, never held whole
        except (ArtifactCorrupted, FileNotFoundError) as exc:
            raise IntegrityFailure(str(exc)) from None
        record_download(artifact, actor=actor_for(request.user))
        response = FileResponse(
            get_storage().open(artifact.sha256), content_type=artifact.content_type
        )
        response["Content-Length"] = str(artifact.size)
        response["X-Content-SHA256"] = artifact.sha256
        digest = base64.b64encode(bytes.fromhex(artifact.sha256)).decode()
        response["Repr-Digest"] = f"sha-256=:{digest}:"
        response["Content-Disposition"] = f'attachment; filename="{_safe(artifact.filename)}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response


def _safe(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base) or "artifact"
