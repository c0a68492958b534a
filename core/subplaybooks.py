"""Sub-playbooks (SPEC §3): a `playbook: NAME` step runs NAME's active version as a child
run, and its outcome and outputs become the step's.

The step runs as the engine's own action (`playbook.run`): its first attempt starts the
child, linked both ways (`parent` on the child, `run.child_started` in the parent's
trail), then it polls without holding a worker until the child ends. The child is found
again by the attempt's idempotency key, so a retried start never starts two. Nesting is
bounded (BULWARK_SUBPLAYBOOK_MAX_DEPTH); calling oneself, directly or not, is refused when
a definition is saved or published (playbooks.validation.calls).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from audit.events import record_event
from core.engine.plan import SUBPLAYBOOK_ACTION
from core.engine.state import TERMINAL_RUN, RunStatus
from core.models import Run
from core.runs import RunRefused, start_run
from integrations.context import ActionContext, PollAgain
from integrations.errors import PermanentError
from integrations.registry import action
from playbooks.models import Playbook

DEPTH = "depth"  # how deep a child run is nested, in its context
MAX_POLL_SECONDS = 300.0


@action(SUBPLAYBOOK_ACTION, side_effect="write", idempotent=True, internal=True,
        output="the child run: `run`, `playbook`, `version`, `status` and each step's output "
        "under `steps`")  # fmt: skip
def run_child(
    ctx: ActionContext, *, playbook: str, inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run `playbook`'s active version as a child run and wait for it to end."""
    poll = settings.BULWARK_SUBPLAYBOOK_POLL_SECONDS
    progress = ctx.progress if isinstance(ctx.progress, dict) else {}
    child_id = progress.get("child")
    if child_id is None:
        child = _child_of(ctx) or _start_child(ctx, playbook, inputs or {})
        raise PollAgain(poll, {"child": child.pk},
                        note=f"child run {child.pk} of {playbook} started")  # fmt: skip
    child = Run.objects.select_related("version").get(pk=child_id)
    if child.status not in TERMINAL_RUN:
        # The child's end wakes this step at once (core.transitions.wake_parent); polls
        # are the fallback, further apart the longer it takes (an approval, a person).
        polls = int(progress.get("polls", 0)) + 1
        after = min(MAX_POLL_SECONDS, poll * 1.5 ** min(polls, 20))
        raise PollAgain(after, {**progress, "polls": polls},
                        note=f"child run {child.pk} is {child.status}")  # fmt: skip
    if child.status != RunStatus.SUCCEEDED:
        raise PermanentError(f"child run {child.pk} of {playbook} ended {child.status}"
                             f"{_first_error(child)}", kind="child_failed")  # fmt: skip
    steps = {u.step_id: u.output for u in child.units.filter(item_index=-1, phase="main")}
    result = {"run": child.pk, "playbook": playbook, "version": child.version.number,
              "status": child.status, "steps": steps}  # fmt: skip
    if len(json.dumps(steps, default=str)) > settings.BULWARK_MAX_OUTPUT_BYTES // 2:
        # Too large to carry whole: templates keep the run's facts, the rest is on the child.
        result["steps"] = {}
        result["steps_omitted"] = f"the child's outputs are too large; read run {child.pk}"
    return result


def _child_of(ctx: ActionContext) -> Run | None:
    return Run.objects.filter(parent_key=ctx.idempotency_key).first()


def _start_child(ctx: ActionContext, name: str, inputs: dict[str, Any]) -> Run:
    parent = Run.objects.get(pk=ctx.run_id)
    depth = int(parent.context.get(DEPTH, 0)) + 1
    limit = settings.BULWARK_SUBPLAYBOOK_MAX_DEPTH
    if depth > limit:
        raise PermanentError(f"sub-playbooks nest at most {limit} deep; {name} would be "
                             f"{depth} deep", kind="too_deep")  # fmt: skip
    playbook = Playbook.objects.filter(name=name).first()
    if playbook is None:
        raise PermanentError(f"there is no playbook {name!r}", kind="child_refused")
    unit = ctx.step_id if ctx.item_index is None else f"{ctx.step_id}[{ctx.item_index}]"
    context = {DEPTH: depth, "parent": {"run": parent.pk, "step": unit}}
    if "alert" in parent.context:  # the child sees the alert that started its parent
        context["alert"] = parent.context["alert"]
    try:
        with transaction.atomic():
            # Started on behalf of whoever started the parent: four-eyes gates in the
            # child see the same person, who may not approve them there either.
            child = start_run(playbook=playbook, inputs=inputs, actor=parent.actor,
                              user=parent.created_by, context=context, dry_run=parent.dry_run,
                              parent=(parent, unit, ctx.idempotency_key))  # fmt: skip
            record_event(stream=f"run:{parent.pk}", kind="run.child_started",
                         actor=f"run:{parent.pk}", run_id=parent.pk, step_id=ctx.step_id,
                         payload={"unit": unit, "child": child.pk, "playbook": name,
                                  "version": child.version.number})  # fmt: skip
    except RunRefused as exc:
        raise PermanentError(f"{name} cannot start: {exc.message}", kind="child_refused") from None
    except IntegrityError:  # another attempt of this one started it first
        found = _child_of(ctx)
        if found is None:
            raise
        return found
    return child


def _first_error(run: Run) -> str:
    unit = run.units.filter(error__isnull=False).order_by("finished_at", "id").first()
    if unit is None or not isinstance(unit.error, dict):
        return ""
    return f" (step {unit.unit_label}: {unit.error.get('message', '')})"
