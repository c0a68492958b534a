"""Alert intake: the sources that send alerts, each delivery as received, the alerts."""

from __future__ import annotations

from typing import Any

from django.db import models

from integrations.crypto import decrypt_json, encrypt_json


class AlertSource(models.Model):
    """A sender of alerts, reached at POST /api/v1/hooks/{slug}/."""

    class Format(models.TextChoices):
        GENERIC = "generic"
        ALERTMANAGER = "alertmanager"
        GRAFANA = "grafana"
        SPLUNK = "splunk"
        ELASTIC = "elastic"
        CROWDSTRIKE = "crowdstrike"
        WAZUH = "wazuh"
        SENTINEL = "sentinel"
        OCSF = "ocsf"

    class Auth(models.TextChoices):
        STANDARD_WEBHOOKS = "standard_webhooks"
        GITHUB = "github"  # X-Hub-Signature-256: sha256=<hex HMAC of the body>
        GRAFANA = "grafana"  # X-Grafana-Alerting-Signature: hex HMAC (of timestamp:body)
        BEARER = "bearer"
        BASIC = "basic"
        # ?token=<secret> in the hook's URL, for senders that can set nothing else (Splunk's
        # webhook alert action). The logs redact it (common.log_redaction).
        URL_TOKEN = "url_token"  # noqa: S105 - the scheme's name, not a secret

    slug = models.SlugField(max_length=63, unique=True)
    title = models.CharField(max_length=200, blank=True, default="")
    format = models.CharField(max_length=20, choices=Format.choices, default=Format.GENERIC)
    auth = models.CharField(max_length=20, choices=Auth.choices)
    # {"current": …, "previous": …}: two secrets are valid at once while one is rotated.
    secrets_encrypted = models.TextField()
    # Scheme settings: Grafana's `signature_header` and `timestamp_header` names.
    auth_options = models.JSONField(default=dict, blank=True)
    # A custom mapping: JMESPath expressions per normalised field (alerts.mappings.custom).
    mapping = models.JSONField(default=dict, blank=True)
    max_body_bytes = models.PositiveIntegerField(default=1024 * 1024)
    # Deliveries a minute this source may send (null: no limit); over it → 429.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    rate_tat = models.FloatField(default=0.0)  # the limiter's next free slot (GCRA)
    # Alerts with the same fingerprint within this window are one alert.
    dedup_window_seconds = models.PositiveIntegerField(default=3600)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.slug

    @property
    def secrets(self) -> dict[str, Any]:
        return decrypt_json(self.secrets_encrypted)

    @secrets.setter
    def secrets(self, value: dict[str, Any]) -> None:
        self.secrets_encrypted = encrypt_json(value)


class Alert(models.Model):
    """One normalised alert; later copies within the dedup window attach to it."""

    class Status(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"

    # No index of its own: alert_fingerprint_idx begins with it.
    source = models.ForeignKey(
        AlertSource, on_delete=models.PROTECT, related_name="alerts", db_index=False
    )
    fingerprint = models.CharField(max_length=64)
    external_id = models.CharField(max_length=300, blank=True, default="")
    title = models.CharField(max_length=500)
    severity = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FIRING)
    occurred_at = models.DateTimeField(null=True, blank=True)
    entities = models.JSONField(default=dict)
    raw = models.JSONField()
    count = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # When the playbooks' triggers were matched against it (once; null: still to do).
    triggered_at = models.DateTimeField(null=True, blank=True)
    # A trigger that failed (a bad `if`, inputs the playbook refuses): recorded, never lost.
    trigger_errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["source", "fingerprint", "-last_seen_at"], name="alert_fingerprint_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.title}"


class AlertRun(models.Model):
    """A run a trigger started for an alert."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="runs")
    run = models.OneToOneField("core.Run", on_delete=models.PROTECT, related_name="alert_link")
    trigger_index = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"alert {self.alert_id} → run {self.run_id}"


class Delivery(models.Model):
    """A request as accepted: its body verbatim, and the alerts it produced."""

    # No index of its own: delivery_once_per_source begins with it.
    source = models.ForeignKey(
        AlertSource, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    # The sender's id (webhook-id …) or the body's SHA-256: seen again means a duplicate.
    delivery_id = models.CharField(max_length=200)
    body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)
    alerts = models.ManyToManyField(Alert, related_name="deliveries", blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "delivery_id"], name="delivery_once_per_source"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.delivery_id}"


class IntakeCounter(models.Model):
    """Deliveries by source and outcome (accepted, duplicate, or why refused), for /metrics."""

    source = models.CharField(max_length=63)
    outcome = models.CharField(max_length=40)
    # Each delivery counts on one of a few rows chosen at random, so that concurrent
    # deliveries do not queue on one row's lock until their commits; /metrics sums them.
    shard = models.PositiveSmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "outcome", "shard"], name="intake_counter_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.outcome}={self.count}"


class Schedule(models.Model):
    """A published version's `schedule:` trigger and when it is next due. The scheduler
    fires a due time by moving `next_due_at` on in a conditional UPDATE, so with several
    schedulers running each due time starts exactly one run."""

    version = models.ForeignKey(
        "playbooks.PlaybookVersion", on_delete=models.CASCADE, related_name="schedules"
    )
    trigger_index = models.PositiveIntegerField()
    cron = models.CharField(max_length=100)
    next_due_at = models.DateTimeField()
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(
        "core.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    missed_skipped = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "trigger_index"], name="schedule_once_per_trigger"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version_id}[{self.trigger_index}] {self.cron}"
