"""The runs API: start, list, detail, cancel, retry a step, resume, re-run."""

from __future__ import annotations

import tempfile
from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles
from accounts.permissions import RolePermission, actor_for, has_role
from core.api.serializers import RunDetailSerializer, RunSerializer, StartRunSerializer
from core.evidence import write_run_bundle
from core.models import RUN_STATUS_CHOICES, Attempt, Run, StepRun
from core.runs import RunRefused, cancel_run, rerun, resume_run, retry_step, start_run
from playbooks.models import Playbook


class RunFilter(django_filters.FilterSet):
    playbook = django_filters.CharFilter(field_name="playbook__name")
    status = django_filters.ChoiceFilter(choices=RUN_STATUS_CHOICES)
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Run
        fields = ["playbook", "status", "since"]


def _refused(exc: RunRefused) -> ValidationError:
    return ValidationError([{"path": path, "message": message} for path, message in exc.problems])


class CanExportEvidence(BasePermission):
    message = "exporting a run's evidence needs the analyst, auditor or admin role"

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user, roles.ANALYST, roles.AUDITOR)


class RunViewSet(viewsets.ReadOnlyModelViewSet[Run]):
    filterset_class = RunFilter
    write_roles = {
        "create": (roles.ANALYST,),
        "cancel": (roles.ANALYST,),
        "retry_step": (roles.ANALYST,),
        "resume": (roles.ANALYST,),
        "rerun": (roles.ANALYST,),
    }

    def get_queryset(self) -> QuerySet[Run]:
        queryset = Run.objects.select_related("playbook", "version")
        if self.action == "retrieve":
            units = StepRun.objects.order_by("id").prefetch_related(
                Prefetch("attempt_rows", queryset=Attempt.objects.order_by("number"))
            )
            queryset = queryset.prefetch_related(Prefetch("units", queryset=units))
        return queryset

    def get_serializer_class(self) -> Any:
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    @extend_schema(request=StartRunSerializer, responses={201: RunDetailSerializer})
    def create(self, request: Request) -> Response:
        body = StartRunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        playbook = Playbook.objects.filter(name=data["playbook"]).first()
        if playbook is None:
            raise ValidationError(
                [{"path": "playbook", "message": f"no playbook named {data['playbook']!r}"}]
            )
        try:
            run = start_run(
                playbook=playbook,
                inputs=data["inputs"],
                version=data["version"],
                user=request.user,
                actor=actor_for(request.user),
                dry_run=data["dry_run"],
                fixtures=data["fixtures"],
            )
        except RunRefused as exc:
            raise _refused(exc) from None
        return Response(
            RunDetailSerializer(self.get_queryset().get(pk=run.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses={200: RunDetailSerializer})
    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    @action(detail=True, methods=["get"], permission_classes=[RolePermission, CanExportEvidence])
    def evidence(self, request: Request, pk: str | None = None) -> FileResponse:
        """The run's evidence bundle (zip): its audit events, the signed digests covering
        them, the public key, the definition, artifact hashes and a readable report.
        Verify it offline with `manage.py audit_verify --bundle FILE`."""
        run = self.get_object()
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed by the response
        write_run_bundle(run, spool, actor=actor_for(request.user))
        spool.seek(0)
        return FileResponse(spool, as_attachment=True, filename=f"run-{run.pk}-evidence.zip",
                            content_type="application/zip")  # fmt: skip

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        try:
            run = cancel_run(run=self.get_object(), actor=actor_for(request.user))
        except RunRefused as exc:
            return Response({"error": exc.message, "errors": []}, status=status.HTTP_409_CONFLICT)
        return Response(RunDetailSerializer(run).data)

    @extend_schema(request=None, responses={200: RunDetailSerializer})
    @action(
        detail=True, methods=["post"], url_path=r"steps/(?P<step_id>[a-z][a-z0-9_]{0,62})/retry"
    )
    def retry_step(self, request: Request, pk: str | None = None, step_id: str = "") -> Response:
        try:
            run = retry_step(run=self.get_object(), step_id=step_id, actor=actor_for(request.user))
        except RunRefused as exc:
            return Response(
                {
                    "error": exc.message,
                    "errors": [{"path": p, "message": m} for p, m in exc.problems],
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(RunDetailSerializer(run).data)

    @extend_schema(request=None, responses={200: RunDetailSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Run the failed run's failed steps again; the steps that succeeded keep their
        outputs and are not repeated."""
        try:
            run = resume_run(run=self.get_object(), actor=actor_for(request.user))
        except RunRefused as exc:
            return _conflict(exc)
        return Response(RunDetailSerializer(_detail(run.pk)).data)

    @extend_schema(request=None, responses={201: RunDetailSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: str | None = None) -> Response:
        """A new run of the playbook's active version with this finished run's inputs,
        linked to it (`rerun_of`, and `reruns` here)."""
        try:
            new = rerun(run=self.get_object(), user=request.user, actor=actor_for(request.user))
        except RunRefused as exc:
            return _conflict(exc)
        return Response(RunDetailSerializer(_detail(new.pk)).data, status=status.HTTP_201_CREATED)


def _detail(run_id: int) -> Run:
    """A run as its detail shows it: steps in order, each with its attempts."""
    units = StepRun.objects.order_by("id").prefetch_related(
        Prefetch("attempt_rows", queryset=Attempt.objects.order_by("number"))
    )
    return (
        Run.objects.select_related("playbook", "version")
        .prefetch_related(Prefetch("units", queryset=units))
        .get(pk=run_id)
    )


def _conflict(exc: RunRefused) -> Response:
    return Response(
        {"error": exc.message, "errors": [{"path": p, "message": m} for p, m in exc.problems]},
        status=status.HTTP_409_CONFLICT,
    )
