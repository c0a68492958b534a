"""Who a person is on other systems: a chat account mapped to a Bulwark user."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ChatIdentity(models.Model):
    """A Slack (or other chat) user id that acts as this Bulwark user, so a button
    clicked in chat is decided by a known person with their roles and groups."""

    class Provider(models.TextChoices):
        SLACK = "slack"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_identities"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    # Slack's user id (U…); with team_id, as ids are unique within a workspace.
    subject = models.CharField(max_length=100)
    team = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "team", "subject"], name="chat_identity_unique"
            )
        ]
        verbose_name_plural = "chat identities"

    def __str__(self) -> str:
        return f"{self.provider}:{self.subject} → {self.user_id}"
