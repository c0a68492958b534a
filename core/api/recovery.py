"""Recovering from failures across playbooks: the failure inbox and bulk replays.

Served by core beside the playbook routes (`playbooks/{name}/replay/`): replaying starts
runs, which the playbooks app may not do."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import roles
from accounts.permissions import RolePermission, actor_for
from core.engine.state import RunStatus
from core.models import ReplayBatch, Run, StepRun
from core.replay import ReplayRefused, request_replay
from playbooks.models import Playbook

# What the inbox lists: runs that ended failing, and runs waiting for a person.
INBOX = (RunStatus.FAILED, RunStatus.COMPENSATED, RunStatus.NEEDS_ATTENTION)


class FailureSerializer(serializers.ModelSerializer[Run]):
    playbook = serializers.CharField(source="playbook.name")
    version = serializers.IntegerField(source="version.number")
    first_error = serializers.SerializerMethodField()
    reruns = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = ["id", "playbook", "version", "status", "actor", "created_at", "finished_at",
                  "first_error", "rerun_of", "reruns"]  # fmt: skip

    def get_first_error(self, run: Run) -> dict[str, Any] | None:
        """The first unit that failed or needs attention: which, and why."""
        failed = [u for u in run.units.all() if u.error]
        if not failed:
            return None
        first = min(failed, key=lambda u: (u.finished_order is None, u.finished_order or 0, u.id))
        error = first.error if isinstance(first.error, dict) else {"message": str(first.error)}
        return {"step": first.step_id, "unit": first.unit_label, "status": first.status,
                "kind": error.get("kind"), "message": error.get("message")}  # fmt: skip

    def get_reruns(self, run: Run) -> list[int]:
        return [r.pk for r in run.reruns.all()]


class FailureFilter(django_filters.FilterSet):
    playbook = django_filters.CharFilter(field_name="playbook__name")
    status = django_filters.ChoiceFilter(choices=[(s.value, s.value) for s in INBOX])
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Run
        fields = ["playbook", "status", "since"]


class FailureInbox(generics.ListAPIView[Run]):
    """Failed, compensated and needs-attention runs across playbooks (not dry runs), newest
    first, each with its first error and the runs that re-ran it."""

    permission_classes = [RolePermission]
    serializer_class = FailureSerializer
    filterset_class = FailureFilter

    def get_queryset(self) -> QuerySet[Run]:
        units = StepRun.objects.filter(error__isnull=False).order_by("id")
        return (
            Run.objects.filter(status__in=INBOX, dry_run=False)  # rehearsals are not failures
            .select_related("playbook", "version")
            .prefetch_related(Prefetch("units", queryset=units), Prefetch(
                "reruns", queryset=Run.objects.order_by("id").only("id", "rerun_of_id")))
            .order_by("-created_at", "-id")
        )  # fmt: skip


class ReplayRequestSerializer(serializers.Serializer[dict[str, Any]]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class ReplaySerializer(serializers.ModelSerializer[ReplayBatch]):
    playbook = serializers.CharField(source="playbook.name")
    runs = serializers.SerializerMethodField()

    class Meta:
        model = ReplayBatch
        fields = ["id", "playbook", "since", "until", "actor", "rate_per_second", "created_at",
                  "finished_at", "runs"]  # fmt: skip

    def get_runs(self, batch: ReplayBatch) -> list[dict[str, Any]]:
        """Each replayed run, its re-run once started, or why it could not be."""
        return [{"original": i.original_id, "run": i.run_id, "started_at": i.started_at,
                 "error": i.error or None} for i in batch.items.order_by("id")]  # fmt: skip


class ReplayView(APIView):
    """POST /playbooks/{name}/replay/: re-run the runs that failed in a window."""

    permission_classes = [RolePermission]
    write_roles = (roles.ANALYST,)

    @extend_schema(
        summary="Bulk-replay the runs of a playbook that failed in a time window",
        request=ReplayRequestSerializer,
        responses={202: ReplaySerializer},
    )
    def post(self, request: Request, name: str) -> Response:
        playbook = get_object_or_404(Playbook, name=name)
        body = ReplayRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            batch = request_replay(playbook=playbook, since=body.validated_data["since"],
                                   until=body.validated_data["until"], user=request.user,
                                   actor=actor_for(request.user))  # fmt: skip
        except ReplayRefused as exc:
            raise ValidationError([{"path": exc.path, "message": exc.message}]) from None
        return Response(ReplaySerializer(batch).data, status=status.HTTP_202_ACCEPTED)


class ReplayDetail(generics.RetrieveAPIView[ReplayBatch]):
    """A replay's progress: each run and its re-run."""

    permission_classes = [RolePermission]
    serializer_class = ReplaySerializer
    queryset = ReplayBatch.objects.select_related("playbook")
