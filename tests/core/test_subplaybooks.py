"""Sub-playbooks: a `playbook:` step runs another playbook's active version as a child run,
linked both ways; its outcome and outputs become the step's; nesting is bounded and no
playbook calls itself, directly or not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from audit.models import AuditEvent
from core.dispatch import InlineDispatcher
from core.models import Run
from core.reconciler import sweep
from core.runs import start_run
from playbooks.versions import DefinitionInvalid, check_definition, create_playbook, publish_version
from tests.conftest import client_for
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)

ENRICH: dict[str, Any] = definition(
    {"id": "lookup", "action": "util.echo", "with": {"message": "{{ inputs.host }}",
                                                     "data": {"score": 7}}},
    name="enrich-host", inputs={"host": {"type": "string", "required": True}},
)  # fmt: skip


def parent(**top: Any) -> dict[str, Any]:
    return definition(
        {"id": "first", "action": "util.echo", "with": {"message": "first"},
         "compensate": {"action": "util.echo", "with": {"message": "undo first"}}},
        {"id": "enrich", "needs": ["first"], "playbook": "enrich-host", "with": {"host": "h-1"}},
        {"id": "after", "needs": ["enrich"], "action": "util.echo",
         "with": {"message": "score {{ steps.enrich.output.steps.lookup.data.score }}"}},
        name="parent-playbook", **top,
    )  # fmt: skip


def finish(run: Run, inline: InlineDispatcher, time_machine: Any, rounds: int = 30) -> Run:
    """Drain the workers; when nothing is queued, let the poll interval pass and sweep."""
    for _ in range(rounds):
        inline.drain()
        run.refresh_from_db()
        if run.finished_at is not None:
            return run
        time_machine.move_to(timezone.now() + timedelta(seconds=2.5))
        sweep()
    return run


def test_a_playbook_step_runs_the_child_and_takes_its_outcome_and_outputs(
    bob: User, inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    published_version(ENRICH)
    version = published_version(parent())
    run = finish(start_run(playbook=version.playbook, actor="user:bob"), inline_dispatch,
                 time_machine)  # fmt: skip
    assert run.status == "succeeded"
    (child,) = run.children.all()
    assert (child.status, child.parent_unit, child.inputs) == (
        "succeeded",
        "enrich",
        {"host": "h-1"},
    )
    units = {u.step_id: u for u in run.units.all()}
    assert units["enrich"].output["run"] == child.pk
    assert units["enrich"].output["steps"]["lookup"]["message"] == "h-1"
    assert units["after"].output["message"] == "score 7"
    # Linked both ways, in the API and in the trail.
    detail = client_for(bob).get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["children"] == [{"run": child.pk, "step": "enrich", "status": "succeeded"}]
    child_detail = client_for(bob).get(f"/api/v1/runs/{child.pk}/").json()
    assert (child_detail["parent"], child_detail["parent_step"]) == (run.pk, "enrich")
    started = AuditEvent.objects.get(stream=f"run:{run.pk}", kind="run.child_started")
    assert started.payload["child"] == child.pk
    created = AuditEvent.objects.get(stream=f"run:{child.pk}", kind="run.created")
    assert (created.payload["parent_run"], created.payload["parent_step"]) == (run.pk, "enrich")
    # And on the pages.
    from tests.web.test_pages import browser

    assert f'href="/runs/{child.pk}/"' in browser(bob).get(f"/runs/{run.pk}/").content.decode()
    child_page = browser(bob).get(f"/runs/{child.pk}/").content.decode()
    assert f'<a href="/runs/{run.pk}/" id="parent-run">run {run.pk}</a>' in child_page


def test_a_failing_child_fails_its_step_and_the_parent_compensates_when_asked(
    inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    published_version(definition({"id": "lookup", "action": "util.fail",
                                  "with": {"message": "vendor refused"}, "retry": {"attempts": 1}},
                                 name="enrich-host", inputs={"host": {"type": "string"}}))  # fmt: skip
    version = published_version(parent(on_failure="compensate"))
    run = finish(start_run(playbook=version.playbook, actor="user:bob"), inline_dispatch,
                 time_machine)  # fmt: skip
    assert run.status == "compensated"
    units = {(u.step_id, u.phase): u for u in run.units.all()}
    enrich = units[("enrich", "main")]
    assert enrich.status == "failed"
    (child,) = run.children.all()
    assert enrich.error["message"] == (
        f"child run {child.pk} of enrich-host ended failed (step lookup: vendor refused)"
    )
    assert units[("first", "compensate")].status == "succeeded"
    assert units[("after", "main")].status == "skipped"


def test_nesting_is_bounded(
    settings: Any, inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    settings.BULWARK_SUBPLAYBOOK_MAX_DEPTH = 1
    published_version(definition(echo("leaf"), name="level-2"))
    published_version(definition({"id": "down", "playbook": "level-2"}, name="level-1"))
    top = published_version(definition({"id": "down", "playbook": "level-1"}, name="level-0"))
    run = finish(start_run(playbook=top.playbook, actor="user:bob"), inline_dispatch, time_machine)
    assert run.status == "failed"
    (child,) = run.children.all()
    assert child.status == "failed"
    assert child.units.get(step_id="down").error["message"] == (
        "sub-playbooks nest at most 1 deep; level-2 would be 2 deep"
    )
    assert not child.children.exists()


def test_calling_oneself_through_others_is_refused_at_save_and_publish(db: None) -> None:
    published_version(definition({"id": "back", "playbook": "alpha"}, name="beta"))
    alpha = definition({"id": "call", "playbook": "beta"}, name="alpha")
    problems = check_definition(alpha)
    assert [(p.path, p.message) for p in problems] == [
        ("steps.call.playbook", "alpha would call itself: alpha → beta → alpha")
    ]
    direct = check_definition(definition({"id": "me", "playbook": "gamma"}, name="gamma"))
    assert [p.message for p in direct] == ["a playbook cannot call itself"]


def test_a_playbook_step_naming_no_published_playbook_cannot_be_published(db: None) -> None:
    version = create_playbook(definition=definition({"id": "call", "playbook": "nowhere"},
                                                    name="caller"), actor="user:alice")  # fmt: skip
    with pytest.raises(DefinitionInvalid, match="no published playbook 'nowhere'"):
        publish_version(version=version, actor="user:alice")


def test_the_childs_end_wakes_its_parent_without_waiting_for_a_poll(
    inline_dispatch: InlineDispatcher,
) -> None:
    published_version(ENRICH)
    version = published_version(parent())
    run = start_run(playbook=version.playbook, actor="user:bob")
    while inline_dispatch.drain():  # no sweep, no time passing: only the wake-up
        pass
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_the_child_acts_for_whoever_started_the_parent_and_is_dry_when_it_is(
    bob: User, inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    published_version(ENRICH)
    version = published_version(parent())
    run = finish(start_run(playbook=version.playbook, actor="user:bob", user=bob, dry_run=True),
                 inline_dispatch, time_machine)  # fmt: skip
    (child,) = run.children.all()
    assert (child.actor, child.created_by_id, child.dry_run) == ("user:bob", bob.pk, True)
    assert child.context["parent"] == {"run": run.pk, "step": "enrich"}


def test_cancelling_the_parent_cancels_its_child(
    inline_dispatch: InlineDispatcher, time_machine: Any
) -> None:
    published_version(definition({"id": "gate", "approval": {"approvers": ["ic"]}}, echo("act", "gate"),
                                 name="enrich-host", inputs={"host": {"type": "string"}}))  # fmt: skip
    version = published_version(parent())
    run = start_run(playbook=version.playbook, actor="user:bob")
    inline_dispatch.drain()
    (child,) = run.children.all()
    assert child.status == "waiting_approval"
    from core.runs import cancel_run

    cancel_run(run=run, actor="user:bob")
    inline_dispatch.drain()
    child.refresh_from_db()
    assert child.status == "cancelled"
