"""Runs, their step units and every attempt: the durable state of execution."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.engine.state import TERMINAL_RUN, RunStatus, UnitStatus

# The engine's enums are the one list of statuses; the database stores their values.
RUN_STATUS_CHOICES = [(s.value, s.value.replace("_", " ")) for s in RunStatus]
UNIT_STATUS_CHOICES = [(s.value, s.value.replace("_", " ")) for s in UnitStatus]


def idempotency_key(run_id: int, unit: str, attempt_group: int) -> str:
    """Stable across automatic retries; a new attempt group after an operator retry."""
    return f"bulwark-{run_id}-{unit}-g{attempt_group}"


class RunQuerySet(models.QuerySet["Run"]):
    def active(self) -> RunQuerySet:
        return self.exclude(status__in=[s.value for s in TERMINAL_RUN])


class Run(models.Model):
    """One execution of a pinned playbook version."""

    playbook = models.ForeignKey(
        "playbooks.Playbook", on_delete=models.PROTECT, related_name="runs"
    )
    version = models.ForeignKey(
        "playbooks.PlaybookVersion", on_delete=models.PROTECT, related_name="runs"
    )
    status = models.CharField(
        max_length=20, choices=RUN_STATUS_CHOICES, default=RunStatus.RUNNING, db_index=True
    )
    inputs = models.JSONField(default=dict)
    context = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, default="system")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # A dry run: reads run (or answer from fixtures), writes only say what they would do.
    dry_run = models.BooleanField(default=False)
    # The run whose `playbook:` step started this one, that step's unit, and the attempt
    # it belongs to (its idempotency key: a retried start finds the child it made).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    parent_unit = models.CharField(max_length=80, blank=True, default="")
    parent_key = models.CharField(max_length=300, null=True, blank=True, unique=True)
    # The finished run this one re-runs (on the then active version, with its inputs).
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reruns"
    )

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_RUN


class StepRun(models.Model):
    """One unit of a run: a step, one item of a for_each step, or a compensation.

    Executable units are claimed by workers: `attempts` is counted at the claim and is the
    fencing token every completion write must match.
    """

    # Not indexed on its own: the unique constraint below leads with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="units", db_index=False)
    step_id = models.CharField(max_length=63)
    item_index = models.IntegerField(default=-1)
    phase = models.CharField(max_length=12, default="main")
    status = models.CharField(
        max_length=20, choices=UNIT_STATUS_CHOICES, default=UnitStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    attempt_group = models.PositiveIntegerField(default=1)
    dispatch_token = models.PositiveIntegerField(default=0)
    inputs = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    reason = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - None means "no reason", as in the engine
    item_value = models.JSONField(null=True, blank=True)
    items_total = models.IntegerField(null=True, blank=True)
    finished_order = models.IntegerField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the current (or last) attempt was claimed; its Attempt row is written when it ends.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    # A finished attempt's result waiting to be applied to the run (see core.attempt_results).
    result = models.JSONField(null=True, blank=True)
    # An asynchronous action's state between polls (see UnitStatus.WAITING).
    progress = models.JSONField(null=True, blank=True)
    # Approval requests the unit has opened (numbers them; see core.engine.gates).
    requests_made = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step_id", "item_index", "phase"], name="unit_unique_per_run"
            ),
        ]
        # Partial indexes, one per sweep of the scheduler and one for drainers: a unit's
        # row is updated three or four times a step, and each index it enters costs that
        # write; here a row is only in the index of the state it is in.
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="unit_due_idx",
                condition=Q(status__in=["retry_wait", "waiting", "waiting_approval"]),
            ),
            models.Index(
                fields=["lease_expires_at"], name="unit_lease_idx", condition=Q(status="running")
            ),
            # Queued units by run, in order (a drainer's claim); also what the scheduler
            # scans for units whose message was lost.
            models.Index(
                fields=["run", "id"], name="unit_queued_by_run_idx", condition=Q(status="queued")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.unit_label} of run {self.run_id} ({self.status})"

    @property
    def unit_label(self) -> str:
        text = self.step_id if self.item_index < 0 else f"{self.step_id}[{self.item_index}]"
        return text if self.phase == "main" else f"{text}:{self.phase}"

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.run_id, self.unit_label, self.attempt_group)


class Attempt(models.Model):
    """One ended attempt of a unit, as a worker ran it (the running one is on its unit)."""

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        # Polled an asynchronous vendor action that is not done yet.
        WAITING = "waiting"
        # Did not act: a blast-radius budget was spent (the unit waits for an approval).
        HELD = "held"
        LOST = "lost"
        FENCED = "fenced"

    # Not indexed on its own: the unique constraint (unit, number) leads with it.
    unit = models.ForeignKey(
        StepRun, on_delete=models.CASCADE, related_name="attempt_rows", db_index=False
    )
    number = models.PositiveIntegerField()
    attempt_group = models.PositiveIntegerField(default=1)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RUNNING)
    worker = models.CharField(max_length=200, blank=True, default="")
    idempotency_key = models.CharField(max_length=300)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["unit_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["unit", "number"], name="attempt_number_unique")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of unit {self.unit_id} ({self.outcome})"


class ReplayBatch(models.Model):
    """A bulk replay: the runs of a playbook that failed in a window, re-run at a bounded
    rate by the scheduler (core.replay)."""

    playbook = models.ForeignKey("playbooks.Playbook", on_delete=models.PROTECT, related_name="+")
    since = models.DateTimeField()
    until = models.DateTimeField()
    actor = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rate_per_second = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"replay {self.pk} of {self.playbook_id}"


class ReplayItem(models.Model):
    """One run of a replay: its re-run, once started, or why it could not be."""

    batch = models.ForeignKey(ReplayBatch, on_delete=models.CASCADE, related_name="items")
    original = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="+")
    run = models.OneToOneField(
        Run, null=True, blank=True, on_delete=models.PROTECT, related_name="replay_item"
    )
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "original"], name="replay_item_once")
        ]

    def __str__(self) -> str:
        return f"replay {self.batch_id}: run {self.original_id}"


class ReconcilerCounter(models.Model):
    """How often the scheduler had to recover work, by kind (for /metrics)."""

    kind = models.CharField(max_length=40, primary_key=True)
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.kind}={self.count}"


# The approval models live in their own module; importing them here registers them.
from core.approval_models import (  # noqa: E402
    ActionBudget,
    ApprovalDecision,
    ApprovalLink,
    ApprovalNotice,
    ApprovalRequest,
    BudgetUse,
    SeenInteraction,
)

__all__ = [
    "ActionBudget",
    "ApprovalDecision",
    "ApprovalLink",
    "ApprovalNotice",
    "ApprovalRequest",
    "Attempt",
    "BudgetUse",
    "ReconcilerCounter",
    "ReplayBatch",
    "ReplayItem",
    "Run",
    "SeenInteraction",
    "StepRun",
]
