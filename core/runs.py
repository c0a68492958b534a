"""Operations on runs: start, cancel, retry a step, resume, re-run."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction

from audit.events import NewEvent, record_event
from core.dry_run import FIXTURES, fixture_problems
from core.engine.advance import EngineError, new_run_state
from core.engine.events import Cancel, Resume, RetryStep, Start
from core.engine.state import TERMINAL_RUN, RunStatus
from core.fast_sql import insert_units
from core.models import Run
from core.run_inputs import resolve_inputs
from core.transitions import apply_event, plan_for
from playbooks.models import Playbook, PlaybookVersion


class RunRefused(Exception):
    """A run cannot start (or change) as asked; `problems` say what and where."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or [("", message)]


def _pick_version(
    playbook: Playbook, number: int | None, *, dry_run: bool = False
) -> PlaybookVersion:
    if number is None:
        version = playbook.active_version
        if version is None:
            raise RunRefused(
                f"playbook {playbook.name} has no published version; publish one or name a version",
                [("version", "no published version")],
            )
        return version
    try:
        version = playbook.versions.get(number=number)
    except PlaybookVersion.DoesNotExist:
        raise RunRefused(
            f"playbook {playbook.name} has no version {number}", [("version", "no such version")]
        ) from None
    if version.state == PlaybookVersion.State.DRAFT and not dry_run:
        # Drafts have not passed the publish-time checks (the approval guardrail among them).
        raise RunRefused(
            f"version {number} of {playbook.name} is a draft; publish it before running it",
            [("version", "is a draft")],
        )
    return version


def start_run(
    *,
    playbook: Playbook,
    inputs: dict[str, Any] | None = None,
    version: int | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    actor: str,
    context: dict[str, Any] | None = None,
    rerun_of: Run | None = None,
    replay: int | None = None,
    dry_run: bool = False,
    fixtures: dict[str, Any] | None = None,
    parent: tuple[Run, str, str] | None = None,
) -> Run:
    """Create a run of the playbook's active (or given) version and start its first steps.

    `rerun_of` links it to the finished run it re-runs; `replay`, to the bulk replay that
    started it (its ReplayBatch id). A `dry_run` may run any version, drafts included;
    `fixtures` answer its steps by unit, step or action (core.dry_run). `parent` is the
    run, unit and attempt key of the `playbook:` step that starts it (core.subplaybooks)."""
    if fixtures and not dry_run:
        raise RunRefused("fixtures are for dry runs only", [("fixtures", "needs dry_run")])
    chosen = _pick_version(playbook, version, dry_run=dry_run)
    if dry_run:
        refused = fixture_problems(chosen.definition, fixtures or {})
        if refused:
            raise RunRefused(f"{refused[0][0]}: {refused[0][1]}", refused)
        context = {**(context or {}), FIXTURES: dict(fixtures or {})}
    resolved, problems = resolve_inputs(chosen.definition.get("inputs") or {}, inputs or {})
    if problems:
        raise RunRefused(f"{problems[0][0]}: {problems[0][1]}", problems)
    with transaction.atomic():
        run = Run.objects.create(
            playbook=playbook,
            version=chosen,
            inputs=resolved,
            context=context or {},
            created_by=user if isinstance(user, User) else None,
            actor=actor,
            status=RunStatus.RUNNING,
            rerun_of=rerun_of,
            dry_run=dry_run,
            parent=parent[0] if parent else None,
            parent_unit=parent[1] if parent else "",
            parent_key=parent[2] if parent else None,
        )
        plan = plan_for(run)
        state = new_run_state(plan, run_id=run.pk, inputs=resolved)
        insert_units(
            run.pk,
            [
                {"step_id": key.step, "max_attempts": u.max_attempts}
                for key, u in state.units.items()
            ],
        )
        created = NewEvent(
            stream=f"run:{run.pk}",
            kind="run.created",
            actor=actor,
            payload={
                "playbook": playbook.name,
                "version": chosen.number,
                "content_hash": chosen.content_hash,
                "inputs": resolved,
                **({"rerun_of": rerun_of.pk} if rerun_of is not None else {}),
                **({"dry_run": True} if dry_run else {}),
                **({"parent_run": parent[0].pk, "parent_step": parent[1]} if parent else {}),
                **({"replay": replay} if replay is not None else {}),
            },
            run_id=run.pk,
            playbook=playbook.name,
        )
        apply_event(run.pk, Start(), actor=actor, extra_events=[created])
    run.refresh_from_db()
    return run


def cancel_run(*, run: Run, actor: str) -> Run:
    """Stop a run: nothing new starts; attempts already running finish and are recorded.
    Its child runs (its `playbook:` steps') are cancelled too: they act for it."""
    try:
        apply_event(run.pk, Cancel(reason=f"cancelled by {actor}"), actor=actor)
    except EngineError as exc:
        raise RunRefused(str(exc)) from None
    for child in Run.objects.filter(parent=run).active():
        try:
            cancel_run(run=child, actor=actor)
        except RunRefused:  # it ended meanwhile
            continue
    run.refresh_from_db()
    return run


def retry_step(*, run: Run, step_id: str, actor: str) -> Run:
    """Run a failed (or stuck) step again with a fresh idempotency key, and what it skipped."""
    try:
        apply_event(run.pk, RetryStep(step_id=step_id), actor=actor)
    except EngineError as exc:
        raise RunRefused(str(exc), [(f"steps.{step_id}", str(exc))]) from None
    run.refresh_from_db()
    return run


def resume_run(*, run: Run, actor: str) -> Run:
    """Run a failed run's failed steps again (and what they made skip); the steps that
    succeeded keep their recorded outputs and are not repeated. A run re-run already is
    not resumed as well: that would do its work twice."""

    def not_rerun(state: object, loaded: object) -> bool:
        # Asked under the run's lock, which a re-run takes too: one of them waits.
        return first_rerun(run) is None

    try:
        applied = apply_event(run.pk, Resume(), actor=actor, precondition=not_rerun)
    except EngineError as exc:
        raise RunRefused(str(exc)) from None
    if applied is None:
        earlier = first_rerun(run)
        raise RunRefused(f"run {run.pk} was re-run already, as run {earlier}; it is not resumed")
    run.refresh_from_db()
    return run


def rerun(
    *,
    run: Run,
    actor: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
    replay: int | None = None,
) -> Run:
    """A new run of the playbook's active version with the finished run's inputs (and
    alert context), linked to it both ways; both streams record it."""
    with transaction.atomic():
        # Locked, so two re-runs of one run (a click twice, a replay beside a person)
        # queue here and the second finds the first.
        run = Run.objects.select_for_update(of=("self",)).select_related("playbook").get(pk=run.pk)
        if run.status not in TERMINAL_RUN:
            raise RunRefused(
                f"run {run.pk} is {run.status}; only a finished run can be re-run (resume or "
                "cancel it first)",
                [("run", f"is {run.status}")],
            )
        earlier = first_rerun(run)
        if earlier is not None:
            raise RunRefused(
                f"run {run.pk} was re-run already, as run {earlier}; re-run that one instead",
                [("run", f"re-run already as run {earlier}")],
            )
        active = _pick_version(run.playbook, None)
        # The inputs the active version still declares: an input it dropped (a default
        # the old version filled in, say) would refuse the re-run.
        declared = active.definition.get("inputs") or {}
        inputs = {k: v for k, v in run.inputs.items() if k in declared}
        context = {k: v for k, v in run.context.items() if k != FIXTURES}
        new = start_run(playbook=run.playbook, inputs=inputs, user=user, actor=actor,
                        context=context, rerun_of=run, replay=replay, dry_run=run.dry_run,
                        fixtures=run.context.get(FIXTURES) if run.dry_run else None)  # fmt: skip
        record_event(
            stream=f"run:{run.pk}",
            kind="run.rerun",
            actor=actor,
            payload={
                "run": new.pk,
                "version": new.version.number,
                **({"replay": replay} if replay is not None else {}),
            },
            run_id=run.pk,
        )
    return new


def first_rerun(run: Run) -> int | None:
    """The id of the first run that re-ran `run`, if one did."""
    return Run.objects.filter(rerun_of=run).order_by("id").values_list("pk", flat=True).first()
