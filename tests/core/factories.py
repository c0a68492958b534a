"""Building playbooks and versions directly, for tests of the run machinery."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from playbooks.definition import content_hash
from playbooks.models import Playbook, PlaybookVersion


def published_version(definition: dict[str, Any]) -> PlaybookVersion:
    """A playbook with `definition` as its published version 1."""
    playbook, _ = Playbook.objects.get_or_create(name=definition["name"])
    number = playbook.versions.count() + 1
    playbook.versions.filter(state=PlaybookVersion.State.PUBLISHED).update(
        state=PlaybookVersion.State.RETIRED
    )
    return PlaybookVersion.objects.create(
        playbook=playbook,
        number=number,
        definition=definition,
        content_hash=content_hash(definition),
        state=PlaybookVersion.State.PUBLISHED,
        published_at=timezone.now(),
    )


def definition(*steps: dict[str, Any], name: str = "test-playbook", **top: Any) -> dict[str, Any]:
    return {"name": name, "steps": list(steps), **top}


def echo(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "action": "util.echo",
        "needs": list(needs),
        "with": {"message": step_id},
        **extra,
    }
