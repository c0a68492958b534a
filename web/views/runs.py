"""Runs: the list, a run's page (graph, units, timeline, approvals, evidence), its live
parts, starting one by hand, and the actions on it."""

from __future__ import annotations

import collections
import itertools
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.permissions import actor_for
from alerts.models import AlertRun
from artifacts.models import Artifact
from audit.models import AuditEvent
from core.approval_models import ApprovalRequest
from core.engine.state import RunStatus, UnitStatus
from core.models import Attempt, Run, StepRun
from core.runs import RunRefused, cancel_run, rerun, resume_run, retry_step, start_run
from playbooks.models import Playbook, PlaybookVersion
from web.access import can, needs, page
from web.graph import run_graph
from web.run_form import input_fields, read_inputs

PAGE_SIZE = 50
TIMELINE_LIMIT = 500
RETRYABLE = (UnitStatus.FAILED, UnitStatus.NEEDS_ATTENTION, UnitStatus.CANCELLED)


@page
def run_list(request: HttpRequest) -> HttpResponse:
    runs = Run.objects.select_related("playbook", "version").order_by("-created_at", "-id")
    status = request.GET.get("status", "")
    playbook = request.GET.get("playbook", "")
    if status in RunStatus._value2member_map_:
        runs = runs.filter(status=status)
    if playbook:
        runs = runs.filter(playbook__name=playbook)
    paginator = Paginator(runs, PAGE_SIZE)
    current = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/runs.html", {
        "page": current, "status": status, "playbook": playbook, "query": query.urlencode(),
        "statuses": [s.value for s in RunStatus],
        "playbooks": Playbook.objects.order_by("name").values_list("name", flat=True),
        "can_start": can(request, roles.ANALYST),
    })  # fmt: skip


def _run(pk: int) -> Run:
    return get_object_or_404(Run.objects.select_related("playbook", "version", "created_by"), pk=pk)


def _units(run: Run) -> list[StepRun]:
    attempts = Prefetch(
        "attempt_rows", queryset=Attempt.objects.order_by("attempt_group", "number")
    )
    units = StepRun.objects.filter(run=run).prefetch_related(attempts)
    order = {s["id"]: n for n, s in enumerate(run.version.definition.get("steps") or [])}
    return sorted(
        units, key=lambda u: (order.get(u.step_id, 1 << 30), u.phase != "main", u.item_index)
    )


def _graph(run: Run) -> dict[str, Any]:
    units = StepRun.objects.filter(run=run).values_list("step_id", "phase", "status")
    graph = run_graph(run.version.definition, units)
    return {**graph, "run": run.pk, "status": run.status, "terminal": run.is_terminal}


@page
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    # The timeline is the run's audit trail: for those who may export it (SPEC §10).
    may_read = can(request, roles.ANALYST) or can(request, roles.AUDITOR)
    events = AuditEvent.objects.filter(stream=f"run:{run.pk}").order_by("-seq")
    timeline = list(events[:TIMELINE_LIMIT])[::-1] if may_read else []
    link = AlertRun.objects.select_related("alert").filter(run=run).first()
    return render(request, "web/run.html", {
        **_live_context(request, run),
        "graph": _graph(run),
        "timeline": timeline,
        "timeline_total": events.count() if len(timeline) == TIMELINE_LIMIT else len(timeline),
        "artifacts": Artifact.objects.filter(run_id=run.pk).order_by("id"),
        "alert": link.alert if link is not None else None,
        "can_export": may_read,
        "can_audit": can(request, roles.AUDITOR),
        "children": Run.objects.filter(parent=run).select_related("playbook").order_by("id"),
        "reruns": Run.objects.filter(rerun_of=run).order_by("id").values_list("pk", flat=True),
        "plan": [(u.unit_label, u.output["plan"]) for u in _units(run)
                 if run.dry_run and isinstance(u.output, dict) and u.output.get("dry_run") is True],
    })  # fmt: skip


def _live_context(request: HttpRequest, run: Run) -> dict[str, Any]:
    units = _units(run)
    return {
        "run": run,
        "units": _shown_units(units),
        "can_act": can(request, roles.ANALYST),
        "retryable": sorted({u.step_id for u in units if u.status in RETRYABLE}),
        "approvals": ApprovalRequest.objects.filter(run=run)
        .prefetch_related("decisions__user")
        .order_by("requested_at", "id"),
    }


ITEMS_SHOWN = 25


def _shown_units(units: list[StepRun]) -> list[dict[str, Any]]:
    """The rows of the steps table: every unit of a small step; for a wide for_each, the
    items that did not succeed (up to ITEMS_SHOWN) and one row counting the rest by status,
    so that a step of 10,000 items is not 10,000 rows redrawn every two seconds."""
    rows: list[dict[str, Any]] = []
    for (_, phase), group in itertools.groupby(units, key=lambda u: (u.step_id, u.phase)):
        members = list(group)
        if len(members) <= ITEMS_SHOWN:
            rows.extend({"unit": u} for u in members)
            continue
        notable = [u for u in members if u.status not in (UnitStatus.SUCCEEDED, UnitStatus.SKIPPED)]
        shown = notable[:ITEMS_SHOWN]
        rows.extend({"unit": u} for u in shown)
        hidden = [u for u in members if u not in shown]
        counts = collections.Counter(u.status for u in hidden)
        rows.append({"summary": f"{members[0].step_id}{'' if phase == 'main' else ':' + phase}",
                     "hidden": len(hidden), "counts": sorted(counts.items())})  # fmt: skip
    return rows


@page
def run_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The parts of a run's page that change while it runs (htmx polls them)."""
    return render(request, "web/_run_live.html", _live_context(request, _run(pk)))


@page
def run_graph_json(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(_graph(_run(pk)))


@needs(roles.ANALYST)
def run_start(request: HttpRequest) -> HttpResponse:
    playbooks = Playbook.objects.filter(versions__state=PlaybookVersion.State.PUBLISHED).order_by(
        "name"
    )
    name = request.POST.get("playbook") or request.GET.get("playbook") or ""
    chosen = playbooks.filter(name=name).first()
    version = chosen.active_version if chosen is not None else None
    declared = (version.definition.get("inputs") or {}) if version is not None else {}
    problems: list[tuple[str, str]] = []
    if request.method == "POST" and chosen is not None:
        inputs, problems = read_inputs(declared, request.POST)
        if not problems:
            try:
                run = start_run(playbook=chosen, inputs=inputs, user=request.user,
                                actor=actor_for(request.user))  # fmt: skip
            except RunRefused as refused:
                problems = refused.problems
            else:
                messages.success(request, f"Run {run.pk} of {chosen.name} started.")
                return redirect("web:run", pk=run.pk)
    posted = request.POST if request.method == "POST" else None
    return render(request, "web/run_start.html", {
        "playbooks": playbooks, "chosen": chosen, "fields": input_fields(declared, posted),
        "problems": problems,
    }, status=400 if problems else 200)  # fmt: skip


@require_POST
@needs(roles.ANALYST)
def run_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    run = _run(pk)
    actor = actor_for(request.user)
    try:
        if action == "cancel":
            cancel_run(run=run, actor=actor)
            messages.success(request, f"Run {run.pk} is being cancelled.")
        elif action == "retry":
            step = request.POST.get("step", "")
            retry_step(run=run, step_id=step, actor=actor)
            messages.success(request, f"Step {step} of run {run.pk} is being retried.")
        elif action == "resume":
            resume_run(run=run, actor=actor)
            messages.success(request, f"Run {run.pk} is resuming from its failed steps.")
        elif action == "rerun":
            again = rerun(run=run, user=request.user, actor=actor)
            messages.success(request, f"Run {again.pk} started on {run.playbook.name} "
                             f"v{again.version.number} with run {run.pk}'s inputs.")  # fmt: skip
            return redirect("web:run", pk=again.pk)
        else:
            messages.error(request, f"There is no action {action!r} on a run.")
    except RunRefused as refused:
        messages.error(request, refused.message)
    return redirect("web:run", pk=run.pk)
