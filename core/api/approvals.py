"""The approvals API: the approvers' inbox and decisions (SPEC §5)."""

from __future__ import annotations

import json
from typing import Any

import django_filters
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from core.approval_models import ApprovalDecision, ApprovalRequest
from core.approvals.decide import DecisionRefused, decide, decide_many, group_names, why_not


class DecisionSerializer(serializers.ModelSerializer[ApprovalDecision]):
    decision = serializers.SerializerMethodField()
    user = serializers.CharField(source="user.username")

    class Meta:
        model = ApprovalDecision
        fields = ["user", "decision", "comment", "channel", "bound_hash", "decided_at"]

    def get_decision(self, row: ApprovalDecision) -> str:
        return "approve" if row.approve else "reject"


class ApprovalSerializer(serializers.ModelSerializer[ApprovalRequest]):
    playbook = serializers.CharField(source="run.playbook.name")
    version = serializers.IntegerField(source="run.version.number")
    dry_run = serializers.BooleanField(source="run.dry_run", help_text="asked by a dry run")
    step = serializers.CharField(source="step_id")
    unit = serializers.CharField(source="unit_label")
    request = serializers.IntegerField(source="number")
    guarded_inputs = serializers.JSONField(source="guarded")
    decisions = DecisionSerializer(many=True, read_only=True)
    approvals = serializers.SerializerMethodField()
    can_decide = serializers.SerializerMethodField()
    why_not = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = [
            "id", "run", "playbook", "version", "dry_run", "step", "unit", "request", "kind",
            "status", "approvers", "rung", "min_approvals", "approvals", "four_eyes", "message",
            "guarded_inputs", "bound_hash", "reason", "budget", "deadline", "reminders",
            "requested_at", "decided_at", "timed_out", "decisions", "can_decide", "why_not",
        ]  # fmt: skip

    def get_approvals(self, request: ApprovalRequest) -> int:
        return sum(1 for d in request.decisions.all() if d.approve)

    def _why_not(self, request: ApprovalRequest) -> str | None:
        return why_not(request, self.context["request"].user, request.decisions.all())

    def get_can_decide(self, request: ApprovalRequest) -> bool:
        return self._why_not(request) is None

    def get_why_not(self, request: ApprovalRequest) -> str | None:
        return self._why_not(request)


MAX_BULK = 1000


class DecideSerializer(serializers.Serializer[dict[str, Any]]):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class BulkDecideSerializer(DecideSerializer):
    approvals = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_BULK
    )


class ApprovalFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ApprovalRequest.Status.choices)
    kind = django_filters.ChoiceFilter(choices=ApprovalRequest.Kind.choices)
    run = django_filters.NumberFilter(field_name="run_id")
    mine = django_filters.BooleanFilter(method="filter_mine", label="only requests of my groups")

    class Meta:
        model = ApprovalRequest
        fields = ["status", "kind", "run", "mine"]

    def filter_mine(
        self, queryset: QuerySet[ApprovalRequest], name: str, value: bool
    ) -> QuerySet[ApprovalRequest]:
        user = self.request.user if self.request is not None else None
        if not value or not isinstance(user, User):
            return queryset
        match = Q(pk__in=[])
        for group in sorted(group_names(user)):
            match |= _lists_group(group)
        return queryset.filter(match)


def _lists_group(group: str) -> Q:
    """Requests whose `approvers` (a JSON list of group names) holds `group`. SQLite has
    no JSON containment lookup; there the stored text is searched for the quoted name."""
    if connection.vendor == "postgresql":
        return Q(approvers__contains=[group])
    return Q(approvers__icontains=json.dumps(group))


class ApprovalViewSet(viewsets.ReadOnlyModelViewSet[ApprovalRequest]):
    """Approval requests, newest first; `?status=pending` is the approvers' inbox."""

    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilter
    write_roles = {"decision": (roles.APPROVER,), "bulk_decision": (roles.APPROVER,)}

    def get_queryset(self) -> QuerySet[ApprovalRequest]:
        decisions = ApprovalDecision.objects.select_related("user").order_by("decided_at", "id")
        return ApprovalRequest.objects.select_related(
            "run", "run__playbook", "run__version"
        ).prefetch_related(Prefetch("decisions", queryset=decisions))

    @extend_schema(request=DecideSerializer, responses={200: ApprovalSerializer})
    @action(detail=True, methods=["post"])
    def decision(self, request: Request, pk: str | None = None) -> Response:
        """Approve or reject. The first valid decision wins; a repeat changes nothing and
        answers with the outcome (`recorded: false`)."""
        approval = self.get_object()
        body = DecideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = decide(
                request_id=approval.pk,
                user=request.user,
                approve=body.validated_data["decision"] == "approve",
                comment=body.validated_data["comment"],
                channel=ApprovalDecision.Channel.API,
            )
        except DecisionRefused as exc:
            return Response({"error": exc.message, "errors": []}, status=exc.status)
        data = ApprovalSerializer(
            self.get_queryset().get(pk=approval.pk), context={"request": request}
        ).data
        return Response({**data, "recorded": result.recorded}, status=status.HTTP_200_OK)

    @extend_schema(request=BulkDecideSerializer, responses={200: dict[str, str]})
    @action(detail=False, methods=["post"], url_path="bulk-decision")
    def bulk_decision(self, request: Request) -> Response:
        """Approve or reject up to 1,000 requests at once; each is checked and recorded on
        its own. Answers, per id, "recorded", "unchanged" or why it was refused."""
        body = BulkDecideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        outcomes = decide_many(request_ids=list(dict.fromkeys(data["approvals"])), user=request.user,
                               approve=data["decision"] == "approve", comment=data["comment"],
                               channel=ApprovalDecision.Channel.API)  # fmt: skip
        return Response({"results": {str(k): v for k, v in outcomes.items()}})
