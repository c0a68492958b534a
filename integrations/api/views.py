"""/api/v1/connections/: thin views over integrations.connections."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from accounts.permissions import RolePermission, actor_for
from integrations import connections
from integrations.api.serializers import (
    ActionSerializer,
    ConnectionInputSerializer,
    ConnectionSerializer,
    ConnectionTestSerializer,
    ConnectionUpdateSerializer,
)
from integrations.models import Connection
from integrations.registry import load_actions


class ConnectionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Connection]
):
    """Connections: any role reads; admins create, change and delete."""

    queryset = Connection.objects.select_related("created_by")
    serializer_class = ConnectionSerializer
    permission_classes = [RolePermission]
    write_roles = {name: (roles.ADMIN,) for name in ("create", "partial_update", "destroy")} | {
        "test": (roles.ADMIN, roles.AUTHOR)
    }
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9][a-z0-9_-]{0,62}"
    filterset_fields = ["integration"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=ConnectionInputSerializer, responses={201: ConnectionSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ConnectionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user if isinstance(request.user, User) else None
        try:
            connection = connections.create_connection(
                **body.validated_data, actor=actor_for(request.user), user=user
            )
        except connections.ConnectionInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(ConnectionSerializer(connection).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ConnectionUpdateSerializer, responses=ConnectionSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ConnectionUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            connection = connections.update_connection(
                connection=self.get_object(), actor=actor_for(request.user), **body.validated_data
            )
        except connections.ConnectionInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(ConnectionSerializer(connection).data)

    @extend_schema(request=None, responses={200: ConnectionTestSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Check the endpoint and credentials with one harmless call to the vendor."""
        result = connections.test_connection(
            connection=self.get_object(), actor=actor_for(request.user)
        )
        return Response(result)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        connections.delete_connection(connection=self.get_object(), actor=actor_for(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class IntegrationViewSet(viewsets.ViewSet):
    """The action catalogue: every action with its inputs, output, side effect and the
    connection it needs. Any role may read it."""

    permission_classes = [RolePermission]

    @extend_schema(responses=ActionSerializer(many=True))
    def list(self, request: Request) -> Response:
        specs = sorted((s for s in load_actions().values() if not s.internal), key=lambda s: s.name)
        return Response(ActionSerializer(specs, many=True).data)
