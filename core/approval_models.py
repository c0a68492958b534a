"""Approval requests and decisions, blast-radius budgets, and decision links.

The engine keeps an open request's state on its unit (`progress`); these rows are its
durable, queryable record, written in the same transaction as the unit: what the
approvers' inbox lists, what links point to, and who decided what.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApprovalRequest(models.Model):
    """One request for decisions: a gate asking (again), or a budget hold."""

    class Kind(models.TextChoices):
        GATE = "gate"
        BUDGET = "budget"
        # A destructive step's approvals no longer held when its turn came.
        REAUTHORIZE = "reauthorize"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        # The run was cancelled or stopped after a failure while the request waited.
        WITHDRAWN = "withdrawn"

    # Not indexed on its own: approval_by_run_idx leads with it.
    run = models.ForeignKey(
        "core.Run", on_delete=models.CASCADE, related_name="approval_requests", db_index=False
    )
    unit = models.ForeignKey(
        "core.StepRun", on_delete=models.CASCADE, related_name="approval_requests", db_index=False
    )
    step_id = models.CharField(max_length=63)
    unit_label = models.CharField(max_length=100)
    # The gate whose policy the request follows (the step itself, or, when a guarded step
    # asks again because its inputs changed, its gate); empty for budget holds.
    gate_id = models.CharField(max_length=63, blank=True, default="")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.GATE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    approvers = models.JSONField(default=list)
    rung = models.PositiveIntegerField(default=0)
    min_approvals = models.PositiveIntegerField(default=1)
    four_eyes = models.BooleanField(default=False)
    message = models.TextField(blank=True, default="")
    guarded = models.JSONField(default=dict)
    bound_hash = models.CharField(max_length=64)
    reason = models.TextField(blank=True, default="")
    budget = models.JSONField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    reminders = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    timed_out = models.BooleanField(default=False)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["unit", "number"], name="approval_request_unique"),
        ]
        indexes = [
            models.Index(
                fields=["requested_at"],
                name="approval_pending_idx",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["run", "unit_label"], name="approval_by_run_idx"),
        ]

    def __str__(self) -> str:
        return f"approval request {self.pk} ({self.unit_label} of run {self.run_id}: {self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING


class ApprovalNotice(models.Model):
    """One announcement of a request (asked, reminded, escalated) to its channels: written
    with the fact, sent after COMMIT, and sent again by the scheduler if its message or
    its worker was lost, so no announcement is lost."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DONE = "done"
        # Gave up after repeated losses of the worker sending it (audited).
        ABANDONED = "abandoned"

    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="notices", db_index=False
    )
    occasion = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                name="approval_notice_open_idx",
                condition=Q(status__in=["pending", "sending"]),
            ),
            models.Index(fields=["request"], name="approval_notice_request_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.occasion} notice of request {self.request_id} ({self.status})"


class ApprovalDecision(models.Model):
    """One person's approve or reject on a request, through one channel."""

    class Channel(models.TextChoices):
        API = "api"
        WEB = "web"
        SLACK = "slack"
        TEAMS = "teams"
        EMAIL = "email"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_decisions"
    )
    actor = models.CharField(max_length=200)
    approve = models.BooleanField()
    comment = models.TextField(blank=True, default="")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.API)
    bound_hash = models.CharField(max_length=64)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request_id", "decided_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="one_decision_per_person"),
        ]

    def __str__(self) -> str:
        verb = "approved" if self.approve else "rejected"
        return f"{self.actor} {verb} request {self.request_id} via {self.channel}"


class ApprovalLink(models.Model):
    """A signed link to decide a request from e-mail or chat. A link for one recipient
    is single-use; a channel's link (Teams) serves each approver once."""

    nonce = models.CharField(max_length=43, unique=True)
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="links")
    channel = models.CharField(max_length=10, choices=ApprovalDecision.Channel.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.channel} link for request {self.request_id}"


class ActionBudget(models.Model):
    """A blast-radius limit: at most `limit` uses of a destructive action per window,
    across all runs; a unit over it waits for an approval instead of acting."""

    action = models.CharField(max_length=100, unique=True)
    limit = models.PositiveIntegerField()
    window_seconds = models.PositiveIntegerField(default=3600)
    approvers = models.JSONField(
        default=list, help_text="Groups that may let a held action act anyway."
    )
    hold_timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long a hold waits before it is rejected."
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.action}: {self.limit} per {self.window_seconds}s"


class BudgetUse(models.Model):
    """One unit's use of a budget (once per attempt group: retries do not count again).
    `override` marks a use an approval allowed over the limit."""

    budget = models.ForeignKey(ActionBudget, on_delete=models.CASCADE, related_name="uses")
    unit = models.ForeignKey("core.StepRun", on_delete=models.CASCADE, related_name="+")
    attempt_group = models.PositiveIntegerField()
    used_at = models.DateTimeField()
    override = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["unit", "attempt_group"], name="budget_use_unique"),
        ]
        indexes = [models.Index(fields=["budget", "used_at"], name="budget_use_window_idx")]

    def __str__(self) -> str:
        return f"use of {self.budget_id} by unit {self.unit_id}"


class SeenInteraction(models.Model):
    """Signed chat interactions already handled, so a replay inside the signature's
    five-minute window is refused, not applied twice."""

    digest = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.digest
