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
        )
