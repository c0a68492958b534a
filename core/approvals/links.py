"""Signed decision links for e-mail and chat: expiring, bound to one request, single-use.

A link is a token signed with the instance's secret (django.core.signing, HMAC-SHA256)
naming a stored link, its request, the hash the request is bound to and when it expires.
It is not a bearer capability: the person opening it logs in, and only an approver who
may decide the request can use it. A link sent to one person serves once; a channel's
link (a Teams card, Slack buttons) serves each approver once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import actor_for
from core.approval_models import ApprovalDecision, ApprovalLink, ApprovalRequest
from core.approvals.decide import DecisionRefused, DecisionResult, audit_refused, decide

SALT = "bulwark.approval-link"


class LinkRefused(Exception):
    """The link cannot be used: forged, expired, replayed, stale or someone else's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def issue_link(request: ApprovalRequest, *, channel: str, recipient: User | None = None) -> str:
    """A new link's token; it expires with the request's deadline or the configured
    lifetime, whichever comes first."""
    expires = timezone.now() + timedelta(seconds=settings.BULWARK_APPROVAL_LINK_SECONDS)
    if request.deadline is not None:
        expires = min(expires, request.deadline)
    nonce = secrets.token_urlsafe(32)
    ApprovalLink.objects.create(
        nonce=nonce, request=request, channel=channel, recipient=recipient, expires_at=expires
    )
    payload = {"n": nonce, "r": request.pk, "h": request.bound_hash, "e": int(expires.timestamp())}
    return signing.dumps(payload, salt=SALT)


def link_url(token: str) -> str:
    return settings.BULWARK_BASE_URL + reverse("approval-link", args=[token])


@dataclass(frozen=True)
class OpenedLink:
    link: ApprovalLink
    request: ApprovalRequest


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def open_link(token: str, user: AbstractBaseUser | AnonymousUser | None = None) -> OpenedLink:
    """The link and its request if the token is genuine, current and `user`'s to use;
    raises LinkRefused saying why not."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise LinkRefused("this link is not genuine: its signature does not match") from None
    link = (
        ApprovalLink.objects.select_related("request", "request__run", "request__run__version")
        .filter(nonce=str(data.get("n")), request_id=data.get("r"))
        .first()
    )
    if link is None:
        raise LinkRefused("this link is not known here")
    now = timezone.now()
    if now.timestamp() > float(data.get("e", 0)) or now > link.expires_at:
        raise LinkRefused(f"this link expired at {_fmt(link.expires_at)}")
    request = link.request
    if data.get("h") != request.bound_hash:
        raise LinkRefused("this link is stale: the request it was sent for has changed")
    newer = ApprovalRequest.objects.filter(unit_id=request.unit_id, number__gt=request.number)
    if newer.exists():
        raise LinkRefused(
            "this link is stale: the gate has asked again, about different inputs; "
            "use the newest request"
        )
    if link.used_at is not None:
        raise LinkRefused(f"this link was used already, at {_fmt(link.used_at)}")
    if user is not None and user.is_authenticated:
        if link.recipient_id is not None and link.recipient_id != user.pk:
            raise LinkRefused("this link was sent to someone else")
        if link.recipient_id is None and request.decisions.filter(user_id=user.pk).exists():
            raise LinkRefused("you have decided this request already; this link serves once")
    return OpenedLink(link, request)


def use_link(
    token: str,
    user: AbstractBaseUser | AnonymousUser,
    *,
    approve: bool,
    comment: str = "",
    channel: str | None = None,
) -> DecisionResult:
    """Decide through a link (see `open_link` for what refuses it)."""
    opened = open_link(token, user)
    via = channel or opened.link.channel or ApprovalDecision.Channel.WEB
    try:
        with transaction.atomic():
            # The row lock makes two uses of one link queue up; the second finds it used.
            link = ApprovalLink.objects.select_for_update().get(pk=opened.link.pk)
            if link.used_at is not None:
                raise LinkRefused(f"this link was used already, at {_fmt(link.used_at)}")
            result = decide(request_id=opened.request.pk, user=user, approve=approve,
                            comment=comment, channel=via, audit_refusal=False)  # fmt: skip
            if link.recipient_id is not None and result.recorded:
                link.used_at = timezone.now()
                link.save(update_fields=["used_at"])
    except DecisionRefused as exc:
        # Audited now that the link's transaction has rolled back (inside, it would be too).
        audit_refused(opened.request, actor_for(user), via, exc.message)
        raise
    return result
