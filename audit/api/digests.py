"""The digests, the public key that verifies them, and verifying the trail, over the API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import roles
from accounts.permissions import RolePermission
from audit.api.permissions import CanReadAudit
from audit.digests import make_digest
from audit.models import AuditDigest
from audit.signing import ALGORITHM, current_public_key, key_id, public_pem
from audit.verify import verify_trail


class AuditDigestSerializer(serializers.ModelSerializer[AuditDigest]):
    class Meta:
        model = AuditDigest
        fields = ("seq", "created_at", "head_count", "heads_root", "previous_hash", "watermark",
                  "key_id", "hash", "signature")  # fmt: skip
        read_only_fields = fields


class AuditDigestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet[AuditDigest],
):  # fmt: skip
    """Signed digests, newest first; POST makes one now (it covers every event so far)."""

    queryset = AuditDigest.objects.order_by("-seq")
    serializer_class = AuditDigestSerializer
    permission_classes = (RolePermission, CanReadAudit)
    lookup_field = "seq"
    write_roles = (roles.AUDITOR,)

    @extend_schema(request=None, responses={201: AuditDigestSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        digest = make_digest()
        return Response(self.get_serializer(digest).data, status=status.HTTP_201_CREATED)


PUBLIC_KEY = inline_serializer(
    "AuditPublicKey",
    {
        "algorithm": serializers.CharField(),
        "key_id": serializers.CharField(),
        "pem": serializers.CharField(),
    },
)


class AuditPublicKeyView(APIView):
    """The public key that verifies this installation's digests, for auditors' tools."""

    permission_classes = (RolePermission, CanReadAudit)

    @extend_schema(responses={200: PUBLIC_KEY})
    def get(self, request: Request) -> Response:
        public = current_public_key()
        return Response(
            {"algorithm": ALGORITHM, "key_id": key_id(public), "pem": public_pem(public)}
        )


PROBLEM = inline_serializer(
    "AuditProblem",
    {
        "stream": serializers.CharField(),
        "seq": serializers.IntegerField(),
        "id": serializers.IntegerField(allow_null=True),
        "reason": serializers.CharField(),
        "digest": serializers.IntegerField(required=False),
        "tombstone": serializers.IntegerField(required=False),
    },
    allow_null=True,
)
VERIFY_RESULT = inline_serializer(
    "AuditVerifyResult",
    {
        "ok": serializers.BooleanField(),
        "events_checked": serializers.IntegerField(),
        "streams_checked": serializers.IntegerField(),
        "digests_checked": serializers.IntegerField(),
        "first_problem": PROBLEM,
    },
)


class AuditVerifyView(APIView):
    """Verify the trail now, as `audit_verify` does; `run` limits it to one run's stream."""

    permission_classes = (RolePermission, CanReadAudit)
    write_roles = (roles.AUDITOR,)

    @extend_schema(
        request=inline_serializer(
            "AuditVerifyRequest", {"run": serializers.IntegerField(required=False)}
        ),
        responses={200: VERIFY_RESULT},
    )
    def post(self, request: Request) -> Response:
        run = request.data.get("run") if isinstance(request.data, dict) else None
        if run is not None and (isinstance(run, bool) or not isinstance(run, int)):
            raise serializers.ValidationError({"run": "must be a run id (an integer)"})
        result = verify_trail([f"run:{run}"] if run is not None else None)
        return Response({
            "ok": result.ok, "events_checked": result.events_checked,
            "streams_checked": result.streams_checked, "digests_checked": result.digests_checked,
            "first_problem": result.first_problem,
        })  # fmt: skip
