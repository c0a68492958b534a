"""GET /api/v1/audit/export/?format=jsonl|csv: the audit events, filtered, as a file."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import RolePermission, actor_for
from audit.api.filters import AuditEventFilter
from audit.api.permissions import CanReadAudit
from audit.events import record_event
from audit.export import FORMATS, export, last_event_id
from audit.hashing import canonical_json
from audit.models import AuditEvent


class JSONLinesRenderer(BaseRenderer):
    media_type = "application/jsonl"
    format = "jsonl"
    charset = None

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> bytes:
        return b"" if data is None else (canonical_json(data) + "\n").encode()


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> bytes:
        return b"" if data is None else str(data).encode()


class AuditExportView(GenericAPIView[AuditEvent]):
    """The audit events that match the filters, oldest first, streamed: `format=jsonl`
    (the default; every hashed field, verifiable line by line) or `format=csv`. Each
    export is itself an audit event (`audit.exported`)."""

    queryset = AuditEvent.objects.all()
    filterset_class = AuditEventFilter
    permission_classes = (RolePermission, CanReadAudit)
    renderer_classes = (JSONLinesRenderer, CSVRenderer)
    pagination_class = None

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS))],
        responses={(200, media): OpenApiResponse(OpenApiTypes.STR) for media in FORMATS.values()},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        events = self.filter_queryset(self.get_queryset())
        file_format = request.accepted_renderer.format
        filters = {k: v for k, v in request.query_params.items() if k != "format"}
        # What was there when asked for: the export's own record, and anything later, not.
        events = events.filter(id__lte=last_event_id())
        with transaction.atomic():
            record_event(stream="system", kind="audit.exported", actor=actor_for(request.user),
                         payload={"format": file_format, "filters": filters})  # fmt: skip
        response = StreamingHttpResponse(
            export(events, file_format), content_type=FORMATS[file_format]
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{file_format}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Errors are answered in the API's JSON error shape, whatever format was asked for.
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)
