"""/api/v1/alert-sources/ (admins write) and /api/v1/alerts/ (any role reads)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from accounts.permissions import RolePermission, actor_for
from alerts.api.serializers import (
    AlertSerializer,
    RotateSerializer,
    ScheduleSerializer,
    SourceInputSerializer,
    SourceSerializer,
)
from alerts.models import Alert, AlertSource, Schedule
from alerts.sources import SourceInvalid, create_source, rotate_secret


class AlertSourceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[AlertSource]
):
    queryset = AlertSource.objects.order_by("slug")
    serializer_class = SourceSerializer
    permission_classes = [RolePermission]
    write_roles = (roles.ADMIN,)
    lookup_field = "slug"

    @extend_schema(request=SourceInputSerializer, responses={201: SourceSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = SourceInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = {
            k: v
            for k, v in body.validated_data.items()
            if v is not None or k == "rate_limit_per_minute"
        }
        if AlertSource.objects.filter(slug=data["slug"]).exists():
            raise ValidationError({"slug": [f"a source named {data['slug']!r} exists"]})
        try:
            source = create_source(actor=actor_for(request.user), **data)
        except SourceInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RotateSerializer, responses=SourceSerializer)
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A new secret; the previous one stays valid until the next rotation."""
        body = RotateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            source = rotate_secret(source=self.get_object(), secret=body.validated_data["secret"],
                                   actor=actor_for(request.user))  # fmt: skip
        except SourceInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(SourceSerializer(source).data)


class AlertViewSet(viewsets.ReadOnlyModelViewSet[Alert]):
    queryset = Alert.objects.select_related("source").prefetch_related("runs").order_by("-id")
    serializer_class = AlertSerializer
    permission_classes = [RolePermission]
    filterset_fields = ["status", "severity"]


class ScheduleViewSet(viewsets.ReadOnlyModelViewSet[Schedule]):
    """Scheduled triggers of the published versions, with when each is next due."""

    queryset = Schedule.objects.select_related("version__playbook").order_by("next_due_at")
    serializer_class = ScheduleSerializer
    permission_classes = [RolePermission]
