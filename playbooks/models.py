"""Playbooks and their immutable, numbered versions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class Playbook(models.Model):
    """A named automation; what it does lives in its versions."""

    name = models.SlugField(max_length=63, unique=True)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def active_version(self) -> PlaybookVersion | None:
        """The one published version, which new runs use."""
        return self.versions.filter(state=PlaybookVersion.State.PUBLISHED).first()


class VersionImmutableError(Exception):
    """A published or retired version's definition cannot change."""


class PlaybookVersion(models.Model):
    """One immutable definition of a playbook: draft → published → retired."""

    class State(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        RETIRED = "retired"

    playbook = models.ForeignKey(Playbook, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    source_text = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    # Fields a published version may still change: its life-cycle, never its content.
    LIFECYCLE_FIELDS = frozenset({"state", "published_at", "published_by", "retired_at"})

    class Meta:
        ordering = ["playbook_id", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["playbook", "number"], name="playbook_version_number_unique"
            ),
            models.UniqueConstraint(
                fields=["playbook"], condition=Q(state="published"), name="one_published_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.playbook_id} v{self.number} ({self.state})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            stored = type(self).objects.filter(pk=self.pk).values_list("state", flat=True).first()
            update_fields = kwargs.get("update_fields")
            if (
                stored
                and stored != self.State.DRAFT
                and (update_fields is None or not set(update_fields) <= self.LIFECYCLE_FIELDS)
            ):
                raise VersionImmutableError(
                    f"version {self.number} is {stored}; its definition cannot change "
                    "(save with update_fields limited to its life-cycle, or create a new version)"
                )
        super().save(*args, **kwargs)

    @property
    def is_editable(self) -> bool:
        """Only a draft's content may still change."""
        return self.state == self.State.DRAFT
