"""Audit review: the trail filtered (a run's timeline, a stream, a kind, an actor, a time
range), its export, verification, the digests and legal holds."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.permissions import actor_for
from audit.api.filters import AuditEventFilter
from audit.holds import HoldError, place_hold, release_hold
from audit.models import AuditDigest, AuditEvent, LegalHold
from audit.verify import verify_trail
from web.access import needs

PAGE_SIZE = 100
_NUMBER = re.compile(r"[0-9]{1,18}")
FILTERS = ("run", "stream", "kind", "playbook", "actor", "since", "until")


def number(text: str | None) -> int | None:
    """A run or event number given as text (ASCII digits only), or None."""
    text = (text or "").strip()
    return int(text) if _NUMBER.fullmatch(text) else None


@needs(roles.AUDITOR)
def audit_review(request: HttpRequest) -> HttpResponse:
    wanted: dict[str, str] = {k: str(v) for k, v in request.GET.items() if k in FILTERS and v}
    run = number(wanted.get("run"))
    found = AuditEventFilter(wanted, queryset=AuditEvent.objects.all())
    errors: dict[str, Any] = dict(found.errors)
    if "run" in wanted and run is None:
        errors["run"] = ["must be a run's number"]
    events = found.qs if not errors else AuditEvent.objects.none()
    # Keyset pages, newest first: no COUNT over a trail of millions.
    before = number(request.GET.get("before"))
    if before is not None:
        events = events.filter(id__lt=before)
    rows = list(events.order_by("-id")[: PAGE_SIZE + 1])
    older = rows[PAGE_SIZE].pk + 1 if len(rows) > PAGE_SIZE else None
    return render(request, "web/audit.html", {
        "events": rows[:PAGE_SIZE], "filters": wanted, "errors": errors, "run": run,
        "query": urlencode(wanted), "older": older,
        "digests": AuditDigest.objects.order_by("-seq")[:5],
        "holds": LegalHold.objects.order_by("-placed_at")[:50],
        "verified": request.session.pop("audit_verified", None),
    })  # fmt: skip


@require_POST
@needs(roles.AUDITOR)
def audit_verify(request: HttpRequest) -> HttpResponse:
    run = number(request.POST.get("run"))
    result = verify_trail([f"run:{run}"] if run is not None else None)
    outcome: dict[str, Any] = {
        "ok": result.ok, "events": result.events_checked, "streams": result.streams_checked,
        "digests": result.digests_checked, "problem": result.first_problem, "run": run,
    }  # fmt: skip
    request.session["audit_verified"] = outcome
    query = f"?{urlencode({'run': run})}" if run is not None else ""
    return redirect(reverse("web:audit") + query)


@require_POST
@needs(roles.AUDITOR)
def legal_hold(request: HttpRequest) -> HttpResponse:
    run, reason = number(request.POST.get("run")), request.POST.get("reason", "")
    release = request.POST.get("release") == "1"
    if run is None:
        messages.error(request, "Name the run by its number.")
        return redirect("web:audit")
    try:
        if release:
            release_hold(run, reason=reason, actor=actor_for(request.user))
            messages.success(request, f"Run {run}'s legal hold is released.")
        else:
            place_hold(run, reason=reason, actor=actor_for(request.user))
            messages.success(request, f"Run {run}'s audit trail is on legal hold.")
    except HoldError as refused:
        messages.error(request, str(refused))
    return redirect("web:audit")
