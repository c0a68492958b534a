"""The playbooks API (SPEC §5): thin views over playbooks.versions."""

from __future__ import annotations

from typing import Any

from django.db.models import Max, OuterRef, Prefetch, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from accounts.permissions import RolePermission, actor_for
from playbooks import versions
from playbooks.api.serializers import (
    DefinitionInputSerializer,
    ErrorSerializer,
    PlaybookDetailSerializer,
    PlaybookSerializer,
    ValidationResultSerializer,
    VersionDetailSerializer,
)
from playbooks.models import Playbook, PlaybookVersion
from playbooks.schema import playbook_json_schema
from playbooks.validation import Problem

NUMBER = OpenApiParameter("number", int, OpenApiParameter.PATH, description="version number")


def problems_response(problems: list[Problem]) -> Response:
    """400 in the API's error shape, keeping every problem's path."""
    errors = [{"path": p.path, "message": p.message} for p in problems]
    first = errors[0] if errors else {"path": "", "message": "invalid definition"}
    where = f"{first['path']}: " if first["path"] else ""
    return Response(
        {"error": f"{where}{first['message']}", "errors": errors},
        status=status.HTTP_400_BAD_REQUEST,
    )


def _definition(request: Request) -> dict[str, Any] | str:
    body = DefinitionInputSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    definition: dict[str, Any] | str = body.validated_data["definition"]
    return definition


def playbooks_with_numbers(*, with_versions: bool) -> QuerySet[Playbook]:
    """Playbooks annotated with their active and latest version numbers."""
    active = PlaybookVersion.objects.filter(
        playbook=OuterRef("pk"), state=PlaybookVersion.State.PUBLISHED
    ).values("number")[:1]
    queryset = Playbook.objects.annotate(
        active_number=Subquery(active), latest_number=Max("versions__number")
    )
    if with_versions:
        listed = PlaybookVersion.objects.select_related("author", "published_by")
        queryset = queryset.prefetch_related(Prefetch("versions", queryset=listed))
    return queryset


@extend_schema_view(
    list=extend_schema(summary="List playbooks"),
    retrieve=extend_schema(summary="A playbook with its versions"),
)
class PlaybookViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Playbook]
):
    """Playbooks and their versions; writing needs the author role."""

    permission_classes = [RolePermission]
    write_roles = {
        "create": (roles.AUTHOR,),
        "new_version": (roles.AUTHOR,),
        "publish": (roles.AUTHOR,),
        "validate": roles.ROLES,
    }
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[Playbook]:
        return playbooks_with_numbers(with_versions=self.action == "retrieve")

    def get_serializer_class(self) -> type[PlaybookSerializer]:
        return PlaybookDetailSerializer if self.action == "retrieve" else PlaybookSerializer

    @extend_schema(
        summary="Create a playbook (version 1, draft)",
        request=DefinitionInputSerializer,
        responses={201: PlaybookDetailSerializer, 400: ErrorSerializer},
    )
    def create(self, request: Request) -> Response:
        try:
            version = versions.create_playbook(
                definition=_definition(request), user=request.user, actor=actor_for(request.user)
            )
        except versions.DefinitionInvalid as exc:
            return problems_response(exc.problems)
        created = playbooks_with_numbers(with_versions=True).get(pk=version.playbook_id)
        return Response(PlaybookDetailSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Add a draft version",
        request=DefinitionInputSerializer,
        responses={201: VersionDetailSerializer, 400: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path="versions")
    def new_version(self, request: Request, name: str) -> Response:
        playbook = get_object_or_404(Playbook, name=name)
        try:
            version = versions.create_version(
                playbook=playbook,
                definition=_definition(request),
                user=request.user,
                actor=actor_for(request.user),
            )
        except versions.DefinitionInvalid as exc:
            return problems_response(exc.problems)
        return Response(VersionDetailSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="A version with its definition",
        parameters=[NUMBER],
        responses={200: VersionDetailSerializer, 404: ErrorSerializer},
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)")
    def version_detail(self, request: Request, name: str, number: str) -> Response:
        version = get_object_or_404(
            PlaybookVersion.objects.select_related("playbook", "author", "published_by"),
            playbook__name=name,
            number=int(number),
        )
        return Response(VersionDetailSerializer(version).data)

    @extend_schema(
        summary="Publish a version (it becomes active; republishing a retired one rolls back)",
        description="Publishing the version that is already active changes nothing.",
        parameters=[NUMBER],
        request=None,
        responses={200: VersionDetailSerializer, 400: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/publish")
    def publish(self, request: Request, name: str, number: str) -> Response:
        version = get_object_or_404(PlaybookVersion, playbook__name=name, number=int(number))
        try:
            version = versions.publish_version(
                version=version, user=request.user, actor=actor_for(request.user)
            )
        except versions.DefinitionInvalid as exc:
            return problems_response(exc.problems)
        return Response(VersionDetailSerializer(version).data)

    @extend_schema(
        summary="Validate a definition without saving it",
        request=DefinitionInputSerializer,
        responses={200: ValidationResultSerializer, 400: ErrorSerializer},
    )
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        problems = versions.check_definition(_definition(request))
        errors = [{"path": p.path, "message": p.message} for p in problems]
        return Response({"valid": not problems, "errors": errors})

    @extend_schema(
        summary="The JSON Schema of playbook definitions", responses={200: OpenApiTypes.OBJECT}
    )
    @action(detail=False, methods=["get"], url_path="schema")
    def json_schema(self, request: Request) -> Response:
        return Response(playbook_json_schema())
