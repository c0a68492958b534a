"""Connections: configured instances of an integration, with encrypted credentials."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from integrations.context import ConnectionInfo
from integrations.crypto import decrypt_json, encrypt_json


class Connection(models.Model):
    """A named endpoint and credentials for one integration (steps say `connection: NAME`)."""

    integration = models.SlugField(max_length=63)
    # Globally unique: a step names its connection without naming the integration.
    name = models.CharField(max_length=63, unique=True)
    base_url = models.CharField(max_length=2048, blank=True, default="")
    credentials_encrypted = models.TextField(blank=True, default="")
    allow_private_network = models.BooleanField(default=False)
    # Settings that are not secret (Defender's tenant login URL, a default project…).
    options = models.JSONField(default=dict, blank=True)
    # Requests a minute this connection may send, across every run and worker (null: no limit).
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # The circuit opens after this many consecutive transient failures, for the cool-down.
    circuit_failures = models.PositiveIntegerField(default=5)
    circuit_cooldown_seconds = models.FloatField(default=30.0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["integration", "name"]

    def __str__(self) -> str:
        return f"{self.integration}:{self.name}"

    def __repr__(self) -> str:
        return f"<Connection {self.integration}:{self.name}>"

    @property
    def credentials(self) -> dict[str, Any]:
        """The decrypted credentials ({} when none are stored)."""
        if not self.credentials_encrypted:
            return {}
        return decrypt_json(self.credentials_encrypted)

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.credentials_encrypted = encrypt_json(value) if value else ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_encrypted)

    def to_info(self) -> ConnectionInfo:
        """What an action attempt is told about this connection."""
        return ConnectionInfo(
            name=self.name,
            integration=self.integration,
            base_url=self.base_url,
            credentials=self.credentials,
            allow_private_network=self.allow_private_network,
            options=dict(self.options or {}),
            rate_limit_per_minute=self.rate_limit_per_minute,
            circuit_failures=self.circuit_failures,
            circuit_cooldown_seconds=self.circuit_cooldown_seconds,
        )


class ConnectionHealth(models.Model):
    """A connection's circuit breaker and rate limiter, shared by every worker: the row is
    changed only by conditional UPDATEs, so concurrent attempts agree on its state."""

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="health")
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Epoch seconds, so limits compare with one clock expression on every backend.
    opened_at = models.FloatField(null=True, blank=True)
    probe_started_at = models.FloatField(null=True, blank=True)
    # The rate limiter's "theoretical arrival time" (GCRA): the next request's earliest slot.
    rate_tat = models.FloatField(default=0.0)
    times_opened = models.PositiveIntegerField(default=0)
    requests_refused = models.PositiveBigIntegerField(default=0)
    requests_deferred = models.PositiveBigIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, default="")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.state}"
