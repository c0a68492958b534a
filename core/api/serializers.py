"""Shapes of the runs API (shape only: operations live in core.runs)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from artifacts.models import Artifact
from artifacts.store import describe
from core.models import ApprovalRequest, Attempt, Run, StepRun


class StartRunSerializer(serializers.Serializer[dict[str, Any]]):
    playbook = serializers.SlugField(max_length=63)
    inputs = serializers.DictField(required=False, default=dict)
    version = serializers.IntegerField(required=False, min_value=1, allow_null=True, default=None)
    dry_run = serializers.BooleanField(required=False, default=False)
    fixtures = serializers.DictField(
        required=False, default=dict,
        help_text="a dry run's answers, by unit, step or action name: reads take them instead "
        "of calling the vendor; a write's fixture is merged into its plan for later steps",
    )  # fmt: skip


class AttemptSerializer(serializers.ModelSerializer[Attempt]):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "attempt_group",
            "outcome",
            "worker",
            "idempotency_key",
            "started_at",
            "finished_at",
            "duration_ms",
            "error",
        ]


class StepRunSerializer(serializers.ModelSerializer[StepRun]):
    id = serializers.CharField(source="step_id")
    unit = serializers.CharField(source="unit_label")
    item = serializers.SerializerMethodField()
    # Ended attempts; the one running now is told by status, attempts, worker and since.
    attempt_history = AttemptSerializer(source="attempt_rows", many=True, read_only=True)
    worker = serializers.CharField(source="lease_owner", read_only=True)

    class Meta:
        model = StepRun
        fields = [
            "id",
            "unit",
            "item",
            "phase",
            "status",
            "attempts",
            "max_attempts",
            "attempt_group",
            "inputs",
            "output",
            "error",
            "reason",
            "items_total",
            "queued_at",
            "started_at",
            "finished_at",
            "next_attempt_at",
            "attempt_started_at",
            "worker",
            "progress",
            "attempt_history",
        ]

    def get_item(self, unit: StepRun) -> int | None:
        return None if unit.item_index < 0 else unit.item_index


class RunSerializer(serializers.ModelSerializer[Run]):
    playbook = serializers.CharField(source="playbook.name")
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = Run
        fields = ["id", "playbook", "version", "status", "dry_run", "actor", "created_at",
                  "finished_at"]  # fmt: skip


class RunDetailSerializer(RunSerializer):
    steps = StepRunSerializer(source="units", many=True, read_only=True)
    content_hash = serializers.CharField(source="version.content_hash")
    artifacts = serializers.SerializerMethodField()
    approvals = serializers.SerializerMethodField()
    reruns = serializers.SerializerMethodField()
    plan = serializers.SerializerMethodField()
    parent_step = serializers.CharField(source="parent_unit", help_text="the parent's step unit")
    children = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "content_hash", "inputs", "steps", "artifacts",
                  "approvals", "rerun_of", "reruns", "plan", "parent", "parent_step",
                  "children"]  # fmt: skip

    def get_children(self, run: Run) -> list[dict[str, Any]]:
        """The child runs its `playbook:` steps started."""
        rows = Run.objects.filter(parent=run).order_by("id").values("id", "parent_unit", "status")
        return [{"run": r["id"], "step": r["parent_unit"], "status": r["status"]} for r in rows]

    def get_plan(self, run: Run) -> list[dict[str, Any]] | None:
        """A dry run's plan: what each write would have sent, in the order it was planned
        (None for a real run)."""
        if not run.dry_run:
            return None
        planned = [(u, u.output) for u in run.units.all()
                   if isinstance(u.output, dict) and u.output.get("dry_run") is True]  # fmt: skip
        planned.sort(
            key=lambda pair: (pair[0].finished_at is None, pair[0].finished_at, pair[0].id)
        )
        return [{"unit": u.unit_label, "action": output.get("action"), "plan": output.get("plan")}
                for u, output in planned]  # fmt: skip

    def get_reruns(self, run: Run) -> list[int]:
        """The runs that re-ran this one (its re-runs link back with `rerun_of`)."""
        return list(Run.objects.filter(rerun_of=run).order_by("id").values_list("id", flat=True))

    def get_approvals(self, run: Run) -> list[dict[str, Any]]:
        """The run's approval requests (decide them at /api/v1/approvals/{id}/decision/)."""
        fields = ("id", "unit_label", "number", "kind", "status", "approvers", "requested_at",
                  "decided_at")  # fmt: skip
        rows = ApprovalRequest.objects.filter(run_id=run.pk).order_by("id").values(*fields)
        return [dict(row) for row in rows]

    def get_artifacts(self, run: Run) -> list[dict[str, Any]]:
        """Evidence and large outputs the run's steps kept (the bytes at each `url`)."""
        return [describe(a) | {"step_id": a.step_id, "source": a.source}
                for a in Artifact.objects.filter(run_id=run.pk).order_by("id")]  # fmt: skip
