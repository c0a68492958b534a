"""Legal holds and tombstones over the API: auditors hold a run's trail past retention."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from accounts.permissions import RolePermission, actor_for
from audit.api.permissions import CanReadAudit
from audit.holds import MAX_REASON, HoldError, place_hold, release_hold
from audit.models import AuditTombstone, LegalHold


class LegalHoldSerializer(serializers.ModelSerializer[LegalHold]):
    class Meta:
        model = LegalHold
        fields = ("run_id", "reason", "placed_by", "placed_at")
        read_only_fields = ("placed_by", "placed_at")
        # Uniqueness is place_hold's to report, in its words.
        extra_kwargs: ClassVar[dict[str, Any]] = {"run_id": {"validators": []}}


class _ReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=MAX_REASON)


class LegalHoldViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet[LegalHold],
):  # fmt: skip
    """Runs on legal hold; POST {run_id, reason} places one, POST …/{run_id}/release/
    {reason} releases it. Both are events of the run's audit trail."""

    queryset = LegalHold.objects.order_by("-placed_at")
    serializer_class = LegalHoldSerializer
    permission_classes = (RolePermission, CanReadAudit)
    lookup_field = "run_id"
    write_roles = (roles.AUDITOR,)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            hold = place_hold(serializer.validated_data["run_id"], actor=actor_for(request.user),
                              reason=serializer.validated_data["reason"])  # fmt: skip
        except HoldError as exc:
            raise serializers.ValidationError({"run_id": str(exc)}) from None
        return Response(self.get_serializer(hold).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=_ReasonSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, run_id: str) -> Response:
        serializer = _ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not run_id.isdigit():
            raise NotFound(f"no legal hold on run {run_id!r}")
        try:
            release_hold(int(run_id), reason=serializer.validated_data["reason"],
                         actor=actor_for(request.user))  # fmt: skip
        except HoldError as exc:
            raise NotFound(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditTombstoneSerializer(serializers.ModelSerializer[AuditTombstone]):
    class Meta:
        model = AuditTombstone
        fields = ("id", "stream", "from_seq", "through_seq", "prev_hash", "hash", "event_count",
                  "first_at", "last_at", "pruned_at", "reason", "key_id", "signature")  # fmt: skip
        read_only_fields = fields


class AuditTombstoneViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[AuditTombstone]):
    """What retention pruned: one signed tombstone per pruned range; `?stream=` filters."""

    serializer_class = AuditTombstoneSerializer
    permission_classes = (RolePermission, CanReadAudit)

    def get_queryset(self) -> Any:
        tombstones = AuditTombstone.objects.order_by("-pruned_at", "-id")
        stream = self.request.query_params.get("stream")
        return tombstones.filter(stream=stream) if stream else tombstones
