"""Web pages for deciding: the inbox, a request's page, and the page a signed link opens.

Every page needs a logged-in session; deciding is a POST with Django's CSRF check, so a
link alone (forwarded, leaked, prefetched by a mail scanner) decides nothing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from accounts.permissions import role_names
from core.approval_models import ApprovalDecision, ApprovalRequest
from core.approvals.decide import DecisionRefused, DecisionResult, decide, why_not
from core.approvals.links import LinkRefused, open_link, use_link
from core.approvals.notify import summary

MAX_COMMENT = 4000


def any_role(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in and holding a role (as every API read needs): an account without one
    sees nothing of the runs or their approvals."""

    @login_required
    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not role_names(request.user):
            return render(request, "approvals/decide.html",
                          {"refused": "your account holds no role; ask an admin for one"}, status=403)  # fmt: skip
        return view(request, *args, **kwargs)

    return checked


def _context(request: HttpRequest, approval: ApprovalRequest, **extra: Any) -> dict[str, Any]:
    decisions = list(approval.decisions.select_related("user").order_by("decided_at", "id"))
    reason = why_not(approval, request.user, decisions)
    return {
        "approval": approval,
        "title": summary(approval)[0],
        "guarded": json.dumps(approval.guarded, indent=2, sort_keys=True, ensure_ascii=False),
        "decisions": decisions,
        "approvals": sum(1 for d in decisions if d.approve),
        "can_decide": reason is None,
        "why_not": reason,
        **extra,
    }


def _form(request: HttpRequest) -> tuple[bool, str] | None:
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        return None
    return decision == "approve", request.POST.get("comment", "")[:MAX_COMMENT]


def _outcome(approval: ApprovalRequest, recorded: bool) -> str:
    if recorded:
        return f"Your decision is recorded. The request is {approval.status}."
    return f"Nothing changed: the request is {approval.status}."


def _load(pk: int) -> ApprovalRequest:
    return get_object_or_404(
        ApprovalRequest.objects.select_related("run", "run__playbook", "run__version"), pk=pk
    )


@any_role
def inbox(request: HttpRequest) -> HttpResponse:
    pending = (
        ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING)
        .select_related("run", "run__playbook")
        .order_by("requested_at", "id")[:200]
    )
    return render(request, "approvals/inbox.html", {"requests": pending})


def _decide_and_show(
    request: HttpRequest, approval: ApprovalRequest, act: Callable[[bool, str], DecisionResult]
) -> HttpResponse:
    """A POSTed decision: `act(approve, comment)` records it; the page shows the outcome,
    or why it was refused."""
    form = _form(request)
    if form is None:
        return render(request, "approvals/decide.html",
                      _context(request, approval, refused="choose approve or reject"), status=400)  # fmt: skip
    try:
        result = act(*form)
    except (LinkRefused, DecisionRefused) as exc:
        status = exc.status if isinstance(exc, DecisionRefused) else 403
        return render(request, "approvals/decide.html",
                      _context(request, approval, refused=exc.message), status=status)  # fmt: skip
    approval = _load(approval.pk)
    return render(request, "approvals/decide.html",
                  _context(request, approval, outcome=_outcome(approval, result.recorded)))  # fmt: skip


@any_role
@require_http_methods(["GET", "POST"])
def approval_page(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _load(pk)
    if request.method == "POST":
        return _decide_and_show(
            request,
            approval,
            lambda approve, comment: decide(request_id=pk, user=request.user, approve=approve,
                                            comment=comment, channel=ApprovalDecision.Channel.WEB),
        )  # fmt: skip
    return render(request, "approvals/decide.html", _context(request, approval))


@any_role
@require_http_methods(["GET", "POST"])
def link_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        opened = open_link(token, request.user)
    except LinkRefused as exc:
        return render(request, "approvals/decide.html", {"refused": exc.message}, status=403)
    approval = _load(opened.request.pk)
    if request.method == "POST":
        return _decide_and_show(
            request,
            approval,
            lambda approve, comment: use_link(
                token, request.user, approve=approve, comment=comment
            ),
        )
    return render(request, "approvals/decide.html", _context(request, approval))
