"""Read-only audit API: GET /api/v1/audit/ and /api/v1/audit/{id}/."""

from __future__ import annotations

from rest_framework import viewsets

from accounts.permissions import RolePermission
from audit.api.filters import AuditEventFilter
from audit.api.permissions import CanReadAudit
from audit.api.serializers import AuditEventSerializer
from audit.models import AuditEvent


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet[AuditEvent]):
    """Audit events, oldest first. Within a stream, id order is seq order: appends to a
    stream are serialised by its head lock, so a later seq always gets a larger id."""

    queryset = AuditEvent.objects.order_by("id")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    permission_classes = (RolePermission, CanReadAudit)
