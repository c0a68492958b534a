"""Playbook versions: numbering, hashing, publishing, rollback, guardrail and audit."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from audit.models import AuditEvent
from integrations.context import ActionContext
from integrations.registry import action
from playbooks.definition import content_hash
from playbooks.models import Playbook, PlaybookVersion, VersionImmutableError
from playbooks.versions import (
    DefinitionInvalid,
    active_version,
    create_playbook,
    create_version,
    get_version,
    publish_version,
)

pytestmark = pytest.mark.django_db

State = PlaybookVersion.State
ACTOR = "user:alice"


@action("versionstests.wipe_host", side_effect="destructive")
def _wipe_host(ctx: ActionContext, *, host: str) -> dict[str, Any]:
    """Wipe a host (test-only destructive action)."""
    return {"wiped": host}


def triage(message: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "name": "triage",
        "title": "Triage",
        "steps": [{"id": "greet", "action": "util.echo", "with": {"message": message}}],
        **extra,
    }


def wipe(*, gated: bool, **extra: Any) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": "wipe", "action": "versionstests.wipe_host", "with": {"host": "h1"}}
    ]
    if gated:
        steps.insert(0, {"id": "approve", "approval": {"approvers": ["incident-commanders"]}})
        steps[1]["needs"] = ["approve"]
    return {"name": "wipe", "steps": steps, **extra}


def kinds(name: str) -> list[str]:
    events = AuditEvent.objects.filter(stream=f"playbook:{name}").order_by("seq")
    return list(events.values_list("kind", flat=True))


def refresh(version: PlaybookVersion) -> PlaybookVersion:
    return PlaybookVersion.objects.get(pk=version.pk)


def test_create_playbook_stores_version_one_as_a_draft(alice: User) -> None:
    version = create_playbook(definition=triage(), user=alice, actor=ACTOR)

    assert version.number == 1
    assert version.state == State.DRAFT
    assert version.author == alice
    assert version.definition == triage()
    assert version.content_hash == content_hash(triage())
    assert version.playbook.title == "Triage"
    assert active_version(version.playbook) is None


def test_create_from_yaml_text_keeps_the_text_and_hashes_the_content() -> None:
    text = (
        "# the first playbook\n"
        "name: triage\n"
        "title: Triage\n"
        "steps:\n"
        "  - id: greet\n"
        "    action: util.echo\n"
        "    with: {message: hello}\n"
    )

    version = create_playbook(definition=text, actor=ACTOR)

    assert version.source_text == text
    assert version.definition["steps"][0]["id"] == "greet"
    assert version.content_hash == content_hash(triage())


def test_invalid_definition_is_refused_with_every_problem_and_nothing_stored() -> None:
    bad = {
        "name": "triage",
        "steps": [
            {"id": "a", "action": "no.such_action"},
            {"id": "b", "action": "util.echo", "needs": ["missing"]},
        ],
    }

    with pytest.raises(DefinitionInvalid) as caught:
        create_playbook(definition=bad, actor=ACTOR)

    paths = [p.path for p in caught.value.problems]
    assert len(paths) >= 2
    assert any(p.startswith("steps.a.") for p in paths)
    assert any(p.startswith("steps.b.") for p in paths)
    assert "no.such_action" in str(caught.value)
    assert not Playbook.objects.exists()
    assert kinds("triage") == []


def test_a_second_playbook_with_the_same_name_is_refused_on_name() -> None:
    create_playbook(definition=triage(), actor=ACTOR)

    with pytest.raises(DefinitionInvalid) as caught:
        create_playbook(definition=triage("again"), actor=ACTOR)

    assert [p.path for p in caught.value.problems] == ["name"]
    assert PlaybookVersion.objects.count() == 1


def test_names_that_are_api_routes_are_reserved() -> None:
    with pytest.raises(DefinitionInvalid) as caught:
        create_playbook(definition={**triage(), "name": "validate"}, actor=ACTOR)

    assert caught.value.problems[0].path == "name"
    assert not Playbook.objects.exists()


def test_new_versions_are_numbered_in_sequence_with_their_own_hash() -> None:
    playbook = create_playbook(definition=triage(), actor=ACTOR).playbook

    second = create_version(playbook=playbook, definition=triage("two"), actor=ACTOR)
    third = create_version(playbook=playbook, definition=triage("three"), actor=ACTOR)

    assert [second.number, third.number] == [2, 3]
    assert second.content_hash != third.content_hash
    assert get_version(playbook, 2) == second
    with pytest.raises(PlaybookVersion.DoesNotExist):
        get_version(playbook, 4)


def test_a_new_version_must_keep_the_playbook_name() -> None:
    playbook = create_playbook(definition=triage(), actor=ACTOR).playbook

    with pytest.raises(DefinitionInvalid) as caught:
        create_version(playbook=playbook, definition={**triage(), "name": "other"}, actor=ACTOR)

    assert caught.value.problems[0].path == "name"
    assert playbook.versions.count() == 1


def test_publish_activates_the_version_and_retires_the_previous_one(alice: User) -> None:
    first = create_playbook(definition=triage(), actor=ACTOR)
    playbook = first.playbook
    second = create_version(playbook=playbook, definition=triage("two"), actor=ACTOR)

    publish_version(version=first, user=alice, actor=ACTOR)
    published = publish_version(version=second, user=alice, actor=ACTOR)

    assert published.state == State.PUBLISHED
    assert published.published_by == alice
    assert published.published_at is not None
    retired = refresh(first)
    assert retired.state == State.RETIRED
    assert retired.retired_at is not None
    assert active_version(playbook) == second
    assert playbook.versions.filter(state=State.PUBLISHED).count() == 1


def test_the_database_allows_only_one_published_version_per_playbook() -> None:
    first = create_playbook(definition=triage(), actor=ACTOR)
    publish_version(version=first, actor=ACTOR)

    with pytest.raises(IntegrityError), transaction.atomic():
        PlaybookVersion.objects.create(
            playbook=first.playbook,
            number=2,
            definition=triage(),
            content_hash="x",
            state=State.PUBLISHED,
        )


@pytest.mark.parametrize("retire", [False, True])
def test_a_published_or_retired_version_cannot_change(retire: bool) -> None:
    first = create_playbook(definition=triage(), actor=ACTOR)
    publish_version(version=first, actor=ACTOR)
    if retire:
        second = create_version(playbook=first.playbook, definition=triage("2"), actor=ACTOR)
        publish_version(version=second, actor=ACTOR)
    stored = refresh(first)

    stored.definition = triage("changed")
    with pytest.raises(VersionImmutableError):
        stored.save()

    assert refresh(first).definition == triage()


def test_republishing_a_retired_version_rolls_back() -> None:
    first = create_playbook(definition=triage(), actor=ACTOR)
    second = create_version(playbook=first.playbook, definition=triage("two"), actor=ACTOR)
    publish_version(version=first, actor=ACTOR)
    publish_version(version=second, actor=ACTOR)

    rolled_back = publish_version(version=first, actor=ACTOR)

    assert rolled_back.state == State.PUBLISHED
    assert rolled_back.retired_at is None
    assert refresh(second).state == State.RETIRED
    assert active_version(first.playbook) == first
    event = AuditEvent.objects.filter(stream="playbook:triage", kind="playbook.published").latest(
        "seq"
    )
    assert event.payload["version"] == 1
    assert event.payload["previous_version"] == 2
    assert event.payload["republished"] is True


def test_publishing_the_active_version_again_changes_and_records_nothing() -> None:
    first = create_playbook(definition=triage(), actor=ACTOR)
    published = publish_version(version=first, actor=ACTOR)
    before = kinds("triage")

    again = publish_version(version=first, actor=ACTOR)

    assert again.state == State.PUBLISHED
    assert again.published_at == published.published_at
    assert kinds("triage") == before


def test_publish_refuses_a_destructive_step_without_an_approval_gate() -> None:
    first = create_playbook(definition=wipe(gated=True), actor=ACTOR)
    publish_version(version=first, actor=ACTOR)
    ungated = create_version(playbook=first.playbook, definition=wipe(gated=False), actor=ACTOR)

    with pytest.raises(DefinitionInvalid) as caught:
        publish_version(version=ungated, actor=ACTOR)

    assert any("wipe" in f"{p.path} {p.message}" for p in caught.value.problems)
    assert refresh(ungated).state == State.DRAFT
    assert active_version(first.playbook) == first
    assert kinds("wipe").count("playbook.published") == 1


def test_an_autonomous_playbook_publishes_and_the_autonomy_is_audited() -> None:
    version = create_playbook(definition=wipe(gated=False, autonomous=True), actor=ACTOR)

    publish_version(version=version, actor=ACTOR)

    assert refresh(version).state == State.PUBLISHED
    event = AuditEvent.objects.get(stream="playbook:wipe", kind="playbook.autonomous_published")
    assert event.payload == {"version": 1, "content_hash": version.content_hash}
    assert event.actor == ACTOR


def test_a_gated_playbook_publishes_without_an_autonomy_event() -> None:
    version = create_playbook(definition=wipe(gated=True), actor=ACTOR)

    publish_version(version=version, actor=ACTOR)

    assert "playbook.autonomous_published" not in kinds("wipe")


def test_publish_validates_again_against_the_current_catalogue() -> None:
    playbook = create_playbook(definition=triage(), actor=ACTOR).playbook
    # Stored while an action existed that has since been removed from the registry.
    gone = PlaybookVersion.objects.create(
        playbook=playbook,
        number=2,
        definition={"name": "triage", "steps": [{"id": "old", "action": "retired.action"}]},
        content_hash="stale",
    )

    with pytest.raises(DefinitionInvalid) as caught:
        publish_version(version=gone, actor=ACTOR)

    assert "retired.action" in str(caught.value)
    assert refresh(gone).state == State.DRAFT


def test_every_change_is_audited_on_the_playbook_stream() -> None:
    first = create_playbook(definition=triage(), actor=ACTOR)
    second = create_version(playbook=first.playbook, definition=triage("two"), actor=ACTOR)
    publish_version(version=first, actor=ACTOR)
    publish_version(version=second, actor="system:cli")

    assert kinds("triage") == [
        "playbook.created",
        "playbook.version_created",
        "playbook.version_created",
        "playbook.published",
        "playbook.published",
    ]
    last = AuditEvent.objects.filter(stream="playbook:triage").latest("seq")
    assert last.actor == "system:cli"
    assert last.playbook == "triage"
    assert last.payload == {
        "version": 2,
        "content_hash": second.content_hash,
        "previous_version": 1,
        "republished": False,
    }
