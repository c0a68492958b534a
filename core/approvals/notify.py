"""Announcing approval requests where approvers are: Slack buttons, a Teams card with a
signed link, an e-mail with a signed link per recipient.

Each announcement is a notice row written with the request's fact; it is sent after
COMMIT on a worker (the dispatcher carries it like a unit's wake-up) through the same
integration actions playbooks use, and the scheduler sends again a notice whose message
or worker was lost. Every delivery, sent or failed, is an audit event; a failed channel
does not stop the others, and the request stays in the inbox whatever happens.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.events import record_event
from core.approval_models import ApprovalDecision, ApprovalNotice, ApprovalRequest
from core.approvals.decide import gate_approval
from core.approvals.links import issue_link, link_url
from core.dispatch import get_dispatcher
from integrations.connections import resolve_connection
from integrations.context import ActionContext
from integrations.http_client import credential_secrets, redact
from integrations.registry import get_action, invoke

log = logging.getLogger(__name__)
ACTOR = "system:approvals"
MAX_INPUT_TEXT = 1500


def summary(request: ApprovalRequest) -> tuple[str, str, dict[str, str]]:
    """A title, a text and facts that tell an approver what they are asked to allow."""
    run = request.run
    what = "Blast-radius budget hold" if request.kind == ApprovalRequest.Kind.BUDGET else "Approval"
    title = f"{what}: {run.playbook.name} run {run.pk}, step {request.unit_label}"
    inputs = json.dumps(request.guarded, sort_keys=True, ensure_ascii=False)
    if len(inputs) > MAX_INPUT_TEXT:
        inputs = inputs[:MAX_INPUT_TEXT] + " …"
    lines = [request.message] if request.message else []
    if request.reason:
        lines.append(f"Asked again: {request.reason}.")
    lines.append(f"Approving allows: {inputs}")
    facts = {
        "Approvers": ", ".join(request.approvers),
        "Needed": f"{request.min_approvals} approval(s)",
        "Bound to": request.bound_hash[:16],
    }
    if request.deadline is not None:
        facts["Deadline"] = request.deadline.strftime("%Y-%m-%d %H:%M UTC")
    return title, "\n".join(lines), facts


def slack_blocks(request: ApprovalRequest, token: str) -> list[dict[str, Any]]:
    """Block Kit: the summary and two buttons whose value is the signed link token."""
    title, text, facts = summary(request)
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in facts.items()]
    button = {"type": "button", "value": token}
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}, "fields": fields},
        {
            "type": "actions",
            "block_id": f"approval:{request.pk}",
            "elements": [
                {
                    **button,
                    "action_id": "approve",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    **button,
                    "action_id": "reject",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                },
            ],
        },
    ]


def _call(action: str, integration: str, entry: Mapping[str, Any], request: ApprovalRequest,
          notice_id: int, inputs: dict[str, Any], *, to: str = "") -> dict[str, Any]:  # fmt: skip
    spec = get_action(action)
    assert spec is not None, action
    connection = resolve_connection(integration=integration, name=entry.get("connection"))
    if connection is None:
        raise LookupError(f"no {integration} connection is configured")
    ctx = ActionContext(
        run_id=request.run_id,
        step_id=request.step_id,
        item_index=None,
        attempt=1,
        # One per notice and recipient: each mail is its own message (its own Message-ID),
        # and a notice sent again after a lost worker keeps its key.
        idempotency_key=f"bulwark-approval-{request.pk}-notice-{notice_id}{to}",
        timeout_seconds=30.0,
        connection=connection,
    )
    try:
        return invoke(spec, ctx, inputs)
    except Exception as exc:
        # A vendor may echo what it was sent; the audit trail never sees a credential.
        text = redact(f"{type(exc).__name__}: {exc}", credential_secrets(connection.credentials))
        raise NoticeFailed(text) from None


class NoticeFailed(Exception):
    """A channel refused or failed an announcement; the text is redacted."""


def _email_recipients(request: ApprovalRequest, listed: list[str]) -> list[tuple[str, User | None]]:
    if listed:
        users = {u.email.lower(): u for u in User.objects.filter(email__in=listed, is_active=True)}
        return [(address, users.get(address.lower())) for address in listed]
    members = User.objects.filter(groups__name__in=request.approvers, is_active=True).exclude(
        email=""
    )
    return [(u.email, u) for u in members.distinct().order_by("pk")]


def _deliver(
    entry: Mapping[str, Any], request: ApprovalRequest, notice_id: int
) -> tuple[list[str], list[str]]:
    """Send one notify entry; returns where it went, and what failed (e-mail goes to each
    recipient on its own, so one bad address does not silence the others)."""
    title, text, facts = summary(request)
    if entry.get("slack") is not None:
        token = issue_link(request, channel=ApprovalDecision.Channel.SLACK)
        _call("slack.post_message", "slack", entry, request, notice_id,
              {"channel": entry["slack"], "text": f"{title}\n{text}",
               "blocks": slack_blocks(request, token)})  # fmt: skip
        return [f"slack:{entry['slack']}"], []
    if entry.get("teams") is not None:
        token = issue_link(request, channel=ApprovalDecision.Channel.TEAMS)
        _call("teams.post_card", "teams", entry, request, notice_id,
              {"title": title, "text": text, "facts": facts, "link_url": link_url(token),
               "link_title": "Review and decide"})  # fmt: skip
        return ["teams"], []
    sent: list[str] = []
    failed: list[str] = []
    for address, user in _email_recipients(request, list(entry.get("email") or [])):
        token = issue_link(request, channel=ApprovalDecision.Channel.EMAIL, recipient=user)
        body = "\n\n".join([text, *(f"{k}: {v}" for k, v in facts.items()),
                            f"Review and decide (you will be asked to log in):\n{link_url(token)}",
                            "This link is for you alone, serves once and expires."])  # fmt: skip
        try:
            _call("email.send", "email", entry, request, notice_id,
                  {"to": [address], "subject": title, "text": body}, to=f"-{address}")  # fmt: skip
        except NoticeFailed as exc:
            failed.append(f"{address}: {exc}")
            continue
        sent.append(f"email:{address}")
    return sent, failed


def _audit(request: ApprovalRequest, occasion: str, channel: str, targets: list[str],
           error: str | None) -> None:  # fmt: skip
    with transaction.atomic():
        record_event(
            stream=f"run:{request.run_id}",
            kind="approval.notified" if error is None else "approval.notify_failed",
            actor=ACTOR,
            payload={
                "approval": request.pk,
                "request": request.number,
                "unit": request.unit_label,
                "occasion": occasion,
                "channel": channel,
                "targets": targets,
                **({"error": error} if error else {}),
            },
            run_id=request.run_id,
            step_id=request.step_id,
        )


def _announce(request: ApprovalRequest, occasion: str, notice_id: int) -> int:
    """Announce an open request through every channel its gate names; returns how many
    deliveries succeeded."""
    approval = gate_approval(request)
    entries = approval.notify if approval is not None else ()
    delivered = 0
    for entry in entries:
        channel = next(k for k in ("slack", "teams", "email") if entry.get(k) is not None)
        try:
            targets, failures = _deliver(entry, request, notice_id)
        except Exception as exc:  # one channel failing must not keep the others silent
            # NoticeFailed texts are redacted; others (no connection, say) hold no secret.
            failures = [
                str(exc) if isinstance(exc, NoticeFailed) else f"{type(exc).__name__}: {exc}"
            ]
            targets = []
        for failure in failures:
            log.warning("approval %s: announcing on %s failed: %s", request.pk, channel, failure)
            _audit(request, occasion, channel, [], failure[:500])
        if targets:
            _audit(request, occasion, channel, targets, None)
            delivered += 1
    return delivered


def deliver_notice(notice_id: int) -> int:
    """Send a notice once: claimed by one conditional UPDATE (a duplicate message finds
    it taken), sent unless its request was decided meanwhile, then marked done. Returns
    how many channels it reached."""
    claimed = ApprovalNotice.objects.filter(
        pk=notice_id, status=ApprovalNotice.Status.PENDING
    ).update(
        status=ApprovalNotice.Status.SENDING, claimed_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return 0
    notice = ApprovalNotice.objects.select_related(
        "request", "request__run", "request__run__playbook", "request__run__version"
    ).get(pk=notice_id)
    delivered = (
        _announce(notice.request, notice.occasion, notice.pk) if notice.request.is_open else 0
    )
    ApprovalNotice.objects.filter(pk=notice_id).update(
        status=ApprovalNotice.Status.DONE, finished_at=timezone.now()
    )
    return delivered


# A notice claimed this long ago and not done lost its worker; it is sent again, at most
# this many times in all.
SENDING_TIMEOUT = timedelta(minutes=5)
MAX_NOTICE_ATTEMPTS = 3


def resend_lost_notices(*, older_than: timedelta) -> int:
    """The scheduler's duty: send again what was never sent (its message was lost) or
    whose worker died while sending; returns how many were handed to the dispatcher."""
    now = timezone.now()
    lost_worker = ApprovalNotice.objects.filter(
        status=ApprovalNotice.Status.SENDING, claimed_at__lt=now - SENDING_TIMEOUT
    )
    for notice in lost_worker.select_related("request")[:500]:
        if notice.attempts >= MAX_NOTICE_ATTEMPTS:
            if ApprovalNotice.objects.filter(pk=notice.pk, status="sending").update(
                status=ApprovalNotice.Status.ABANDONED, finished_at=now
            ):
                _audit(notice.request, notice.occasion, "all", [],
                       f"gave up after {notice.attempts} attempts whose worker was lost")  # fmt: skip
            continue
        ApprovalNotice.objects.filter(pk=notice.pk, status="sending").update(
            status=ApprovalNotice.Status.PENDING
        )
    stale = list(
        ApprovalNotice.objects.filter(
            status=ApprovalNotice.Status.PENDING, created_at__lt=now - older_than
        ).values_list("pk", "occasion")[:500]
    )
    if stale:
        get_dispatcher().announce(stale)
    return len(stale)
