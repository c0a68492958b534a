"""Operations on playbook versions: create, add a version, publish (and roll back), import.

Every write runs in one transaction together with its audit event, on the stream
`playbook:<name>`. A version's content never changes once published (see the model);
publishing only moves the life-cycle fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit.events import record_event
from playbooks.catalogue import current_catalogue, current_connections
from playbooks.definition import content_hash, load_definition_text
from playbooks.models import Playbook, PlaybookVersion
from playbooks.validation import Problem, guardrail_problems, validate_definition

# Who acts: a user, the anonymous user of an unauthenticated request, or nobody (the CLI).
AnyUser = User | AnonymousUser | None

# These names are routes beside /playbooks/{name}/ (the API's, and the UI's editor and
# its checks), so no playbook may take them.
RESERVED_NAMES = frozenset({"validate", "schema", "new", "check"})


class DefinitionInvalid(Exception):
    """A definition (or a publish) was refused; `problems` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(_describe(p) for p in self.problems) or "invalid definition")


def _describe(problem: Problem) -> str:
    return f"{problem.path}: {problem.message}" if problem.path else problem.message


@dataclass(frozen=True)
class _Checked:
    """A definition that passed validation, ready to store."""

    data: dict[str, Any]
    source_text: str
    content_hash: str

    @property
    def name(self) -> str:
        return str(self.data["name"])


def check_definition(definition: dict[str, Any] | str) -> list[Problem]:
    """Every problem with a definition as a draft (actions, inputs, graph, calling itself
    through other playbooks); no side effects."""
    return validate_definition(definition, catalogue=current_catalogue(), calls=playbook_calls())


def playbook_calls() -> dict[str, set[str]]:
    """What each published playbook's steps call (its active version's `playbook:` steps)."""
    published = PlaybookVersion.objects.filter(state=PlaybookVersion.State.PUBLISHED)
    return {
        name: {s["playbook"] for s in definition.get("steps") or []
               if isinstance(s, dict) and isinstance(s.get("playbook"), str)}
        for name, definition in published.values_list("playbook__name", "definition")
    }  # fmt: skip


def _unpublished_callees(definition: dict[str, Any], calls: dict[str, set[str]]) -> list[Problem]:
    """`playbook:` steps naming a playbook with no published version: nothing to run."""
    return [
        Problem(f"steps.{s['id']}.playbook",
                f"no published playbook {s['playbook']!r} (publish it first)")
        for s in definition.get("steps") or []
        if isinstance(s, dict) and isinstance(s.get("playbook"), str)
        and s["playbook"] not in calls and s["playbook"] != definition.get("name")
    ]  # fmt: skip


def _check(definition: dict[str, Any] | str) -> _Checked:
    problems = check_definition(definition)
    if problems:
        raise DefinitionInvalid(problems)
    if isinstance(definition, str):
        data, source_text = load_definition_text(definition), definition
    else:
        data, source_text = definition, ""
    return _Checked(data=data, source_text=source_text, content_hash=content_hash(data))


def _user_or_none(user: AnyUser) -> User | None:
    return user if isinstance(user, User) else None


def _add_version(
    *, playbook: Playbook, checked: _Checked, user: AnyUser, actor: str
) -> PlaybookVersion:
    latest = playbook.versions.aggregate(latest=Max("number"))["latest"] or 0
    version = PlaybookVersion.objects.create(
        playbook=playbook,
        number=latest + 1,
        definition=checked.data,
        source_text=checked.source_text,
        content_hash=checked.content_hash,
        author=_user_or_none(user),
    )
    record_event(
        stream=f"playbook:{playbook.name}",
        kind="playbook.version_created",
        actor=actor,
        payload={"version": version.number, "content_hash": version.content_hash},
        playbook=playbook.name,
    )
    return version


def create_playbook(
    *, definition: dict[str, Any] | str, user: AnyUser = None, actor: str
) -> PlaybookVersion:
    """Create a playbook from a definition, with that definition as draft version 1."""
    return _create_playbook(checked=_check(definition), user=user, actor=actor)


def _create_playbook(*, checked: _Checked, user: AnyUser, actor: str) -> PlaybookVersion:
    name = checked.name
    if name in RESERVED_NAMES:
        raise DefinitionInvalid([Problem(path="name", message=f"{name!r} is a reserved name")])
    duplicate = DefinitionInvalid(
        [Problem(path="name", message=f"playbook {name!r} already exists")]
    )
    if Playbook.objects.filter(name=name).exists():
        raise duplicate
    with transaction.atomic():
        try:
            with transaction.atomic():
                playbook = Playbook.objects.create(
                    name=name,
                    title=str(checked.data.get("title") or ""),
                    description=str(checked.data.get("description") or ""),
                    created_by=_user_or_none(user),
                )
        except IntegrityError:  # created concurrently since the check above
            raise duplicate from None
        record_event(
            stream=f"playbook:{name}",
            kind="playbook.created",
            actor=actor,
            payload={"name": name, "title": playbook.title},
            playbook=name,
        )
        return _add_version(playbook=playbook, checked=checked, user=user, actor=actor)


def create_version(
    *,
    playbook: Playbook,
    definition: dict[str, Any] | str,
    user: AnyUser = None,
    actor: str,
) -> PlaybookVersion:
    """Add a draft version with the next number; the definition keeps the playbook's name."""
    return _create_version(playbook=playbook, checked=_check(definition), user=user, actor=actor)


def _create_version(
    *, playbook: Playbook, checked: _Checked, user: AnyUser, actor: str
) -> PlaybookVersion:
    if checked.name != playbook.name:
        raise DefinitionInvalid(
            [
                Problem(
                    path="name",
                    message=f"must be {playbook.name!r}, the playbook's name, not {checked.name!r}",
                )
            ]
        )
    with transaction.atomic():
        # The lock serialises numbering: two concurrent drafts cannot both take "latest + 1".
        locked = Playbook.objects.select_for_update(no_key=True).get(pk=playbook.pk)
        return _add_version(playbook=locked, checked=checked, user=user, actor=actor)


# Checks an app above this one adds to publishing: core adds the playbook's tests, which
# need the engine (playbooks cannot import core). Each returns the problems it finds.
PublishCheck = Callable[[dict[str, Any]], list[Problem]]
_publish_checks: list[PublishCheck] = []


def add_publish_check(check: PublishCheck) -> None:
    """Refuse publishing a definition for which `check` finds problems (once per check)."""
    if check not in _publish_checks:
        _publish_checks.append(check)


def publish_problems(definition: dict[str, Any]) -> list[Problem]:
    """Why a definition may not be published now: validation against the current actions and
    connections, then the guardrail (unless the playbook declares `autonomous: true`), then
    the added checks (its tests)."""
    catalogue = current_catalogue()
    calls = playbook_calls()
    problems = validate_definition(
        definition, catalogue=catalogue, connections=current_connections(), calls=calls
    )
    problems = problems or _unpublished_callees(definition, calls)
    problems = problems or guardrail_problems(definition, catalogue)
    for check in _publish_checks:
        if problems:
            break
        problems = check(definition)
    return problems


def publish_version(
    *, version: PlaybookVersion, user: AnyUser = None, actor: str
) -> PlaybookVersion:
    """Make `version` the active one and retire the one it replaces.

    A retired version may be published again: that is how a playbook is rolled back, and the
    audit event says so (`republished: true`). Publishing the version that is already active
    changes nothing and records nothing (so "make sure v3 is live" is safe to repeat).
    """
    with transaction.atomic():
        playbook = Playbook.objects.select_for_update(no_key=True).get(pk=version.playbook_id)
        version = PlaybookVersion.objects.get(pk=version.pk)
        if version.state == PlaybookVersion.State.PUBLISHED:
            return version
        problems = publish_problems(version.definition)
        if problems:
            raise DefinitionInvalid(problems)
        now = timezone.now()
        previous = playbook.versions.filter(state=PlaybookVersion.State.PUBLISHED).first()
        if previous is not None:
            # Retire first: the partial unique constraint allows one published row at a time.
            previous.state = PlaybookVersion.State.RETIRED
            previous.retired_at = now
            previous.save(update_fields=["state", "retired_at"])
        republished = version.state == PlaybookVersion.State.RETIRED
        version.state = PlaybookVersion.State.PUBLISHED
        version.published_at = now
        version.published_by = _user_or_none(user)
        version.retired_at = None
        version.save(update_fields=["state", "published_at", "published_by", "retired_at"])
        # What the list shows follows what runs: the active version's title and description.
        playbook.title = str(version.definition.get("title") or "")
        playbook.description = str(version.definition.get("description") or "")
        playbook.save(update_fields=["title", "description"])
        stream = f"playbook:{playbook.name}"
        record_event(
            stream=stream,
            kind="playbook.published",
            actor=actor,
            payload={
                "version": version.number,
                "content_hash": version.content_hash,
                "previous_version": previous.number if previous is not None else None,
                "republished": republished,
            },
            playbook=playbook.name,
        )
        if version.definition.get("autonomous") is True:
            record_event(
                stream=stream,
                kind="playbook.autonomous_published",
                actor=actor,
                payload={"version": version.number, "content_hash": version.content_hash},
                playbook=playbook.name,
            )
        return version


def active_version(playbook: Playbook) -> PlaybookVersion | None:
    """The published version new runs use, or None before the first publish."""
    return playbook.active_version


def latest_version(playbook: Playbook) -> PlaybookVersion | None:
    """The highest-numbered version, whatever its state."""
    return playbook.versions.order_by("-number").first()


def get_version(playbook: Playbook, number: int) -> PlaybookVersion:
    """Version `number` of `playbook`; raises PlaybookVersion.DoesNotExist."""
    return playbook.versions.get(number=number)


ImportOutcome = Literal["created", "new version", "unchanged"]


@dataclass(frozen=True)
class ImportResult:
    """What importing one definition did."""

    version: PlaybookVersion
    outcome: ImportOutcome
    published: bool  # True when this import made the version active


def import_definition(
    *, definition: dict[str, Any] | str, publish: bool = False, actor: str
) -> ImportResult:
    """Store a definition as a new playbook, a new version when its content changed, or
    nothing when it did not; with `publish`, make that version active. All or nothing."""
    checked = _check(definition)
    with transaction.atomic():
        playbook = Playbook.objects.filter(name=checked.name).first()
        outcome: ImportOutcome
        if playbook is None:
            version = _create_playbook(checked=checked, user=None, actor=actor)
            outcome = "created"
        else:
            latest = latest_version(playbook)
            if latest is not None and latest.content_hash == checked.content_hash:
                version, outcome = latest, "unchanged"
            else:
                version = _create_version(
                    playbook=playbook, checked=checked, user=None, actor=actor
                )
                outcome = "new version"
        published = publish and version.state != PlaybookVersion.State.PUBLISHED
        if published:
            version = publish_version(version=version, actor=actor)
        return ImportResult(version=version, outcome=outcome, published=published)
