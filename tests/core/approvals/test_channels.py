"""Announcing requests on Slack, Teams and e-mail (against the lab's simulators), and
deciding through their signed links and Slack's signed button clicks."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.models import ChatIdentity
from audit.models import AuditEvent
from core.approval_models import ApprovalDecision, ApprovalRequest
from core.approvals.links import issue_link, link_url
from core.dispatch import InlineDispatcher
from integrations.lab.connections import ensure_lab_connections
from integrations.slack.simulator import block_action, signed_request
from tests.core.approvals.helpers import CALLS, IC, approver, gated, start

pytestmark = pytest.mark.django_db(transaction=True)
LINK = re.compile(r"http://testserver(/approvals/link/[^/\s]+/)")
NOTIFY = [{"slack": "#soc"}, {"teams": True}, {"email": []}]


@pytest.fixture
def channels(lab: Any, settings: Any, encryption_keys: list[str]) -> Any:
    settings.BULWARK_BASE_URL = "http://testserver"
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    return lab


def browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def mailed_link(lab: Any, address: str) -> str:
    (mail,) = [m for m in lab.smtp.messages if address in m.recipients]
    body = (
        mail.message.get_payload(decode=True).decode()
        if not mail.message.is_multipart()
        else (mail.message.get_payload(0).get_payload(decode=True).decode())
    )
    return LINK.search(body).group(1)


def test_a_request_is_announced_on_every_channel_its_gate_names(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    approver("erin", IC), approver("frank", IC)
    run = start(gated(notify=NOTIFY), inline_dispatch, user=bob)
    request = ApprovalRequest.objects.get(run=run)
    (message,) = channels["slack"].messages
    assert message["channel"] == "C0SOC"
    assert "Contain aid-1?" in message["text"]
    buttons = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    assert [b["action_id"] for b in buttons] == ["approve", "reject"]
    (card,) = channels["teams"].cards
    action = card["actions"][0]
    assert action["type"] == "Action.OpenUrl"
    assert LINK.match(action["url"])
    recipients = sorted(a for m in channels.smtp.messages for a in m.recipients)
    assert recipients == ["erin@example.test", "frank@example.test"]
    assert mailed_link(channels, "erin@example.test") != mailed_link(channels, "frank@example.test")
    notified = AuditEvent.objects.filter(run_id=run.pk, kind="approval.notified")
    assert sorted(e.payload["channel"] for e in notified) == ["email", "slack", "teams"]
    assert all(e.payload["approval"] == request.pk for e in notified)


def test_a_channel_that_fails_is_audited_and_the_others_still_go(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    approver("erin", IC)
    run = start(
        gated(notify=[{"slack": "#no-such-channel"}, {"email": []}]), inline_dispatch, user=bob
    )
    failed = AuditEvent.objects.get(run_id=run.pk, kind="approval.notify_failed")
    assert failed.payload["channel"] == "slack"
    assert "channel_not_found" in failed.payload["error"]
    assert len(channels.smtp.messages) == 1
    assert ApprovalRequest.objects.get(run=run).status == "pending"


def test_an_emailed_link_decides_once_for_its_recipient_only(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, frank = approver("erin", IC), approver("frank", IC)
    run = start(gated(min_approvals=2, notify=[{"email": []}]), inline_dispatch, user=bob)
    erins = mailed_link(channels, "erin@example.test")
    anonymous = Client().get(erins)
    assert anonymous.status_code == 302  # a link alone decides nothing: log in first
    assert anonymous["Location"].startswith("/login/")
    page = browser(erin).get(erins)
    assert page.status_code == 200
    assert b"aid-1" in page.content
    assert b"Approve" in page.content
    assert browser(frank).get(erins).status_code == 403  # sent to someone else
    assert b"sent to someone else" in browser(frank).post(erins, {"decision": "approve"}).content
    done = browser(erin).post(erins, {"decision": "approve", "comment": "seen the C2 beacon"})
    assert done.status_code == 200
    assert b"Your decision is recorded" in done.content
    replay = browser(erin).post(erins, {"decision": "approve"})
    assert replay.status_code == 403
    assert b"this link was used already" in replay.content
    decision = ApprovalDecision.objects.get()
    assert (decision.user, decision.channel, decision.comment) == (
        erin,
        "email",
        "seen the C2 beacon",
    )
    browser(frank).post(mailed_link(channels, "frank@example.test"), {"decision": "approve"})
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert len(CALLS) == 1


def test_a_forged_an_expired_and_a_stale_link_are_refused(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User, time_machine: Any
) -> None:
    time_machine.move_to(timezone.now())
    erin = approver("erin", IC)
    run = start(gated(timeout="1h"), inline_dispatch, user=bob)
    request = ApprovalRequest.objects.get(run=run)
    token = issue_link(request, channel="teams")
    path = link_url(token).removeprefix("http://testserver")
    forged = path.replace(token, token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
    response = browser(erin).post(forged, {"decision": "approve"})
    assert response.status_code == 403
    assert b"not genuine" in response.content
    ApprovalRequest.objects.filter(pk=request.pk).update(bound_hash="0" * 64)
    stale = browser(erin).post(path, {"decision": "approve"})
    assert b"stale" in stale.content
    ApprovalRequest.objects.filter(pk=request.pk).update(bound_hash=request.bound_hash)
    time_machine.move_to(timezone.now() + timedelta(minutes=61))  # links end with the deadline
    expired = browser(erin).post(path, {"decision": "approve"})
    assert expired.status_code == 403
    assert b"expired" in expired.content
    assert not ApprovalDecision.objects.exists()


def test_a_teams_link_serves_each_approver_once(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin, frank = approver("erin", IC), approver("frank", IC)
    start(gated(min_approvals=2, notify=[{"teams": True}]), inline_dispatch, user=bob)
    url = channels["teams"].cards[0]["actions"][0]["url"]
    path = LINK.match(url).group(1)
    assert b"recorded" in browser(erin).post(path, {"decision": "approve"}).content
    again = browser(erin).post(path, {"decision": "approve"})
    assert again.status_code == 403
    assert b"decided this request already" in again.content
    assert b"approved" in browser(frank).post(path, {"decision": "approve"}).content


def post_click(body: bytes, headers: dict[str, str]) -> Any:
    extra = {
        f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Type"
    }
    return Client().post("/api/v1/integrations/slack/interactions/", body,
                         content_type=headers["Content-Type"], **extra)  # fmt: skip


def test_slack_buttons_decide_for_the_linked_user_and_refuse_forgeries_and_replays(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    erin = approver("erin", IC)
    ChatIdentity.objects.create(user=erin, provider="slack", subject="U0ERIN", team="T0LAB")
    run = start(gated(notify=[{"slack": "#soc"}]), inline_dispatch, user=bob)
    (message,) = channels["slack"].messages

    forged_body, headers = signed_request(block_action(message, "approve", user_id="U0ERIN"),
                                          secret="not-the-signing-secret")  # fmt: skip
    forged = post_click(forged_body, headers)
    assert forged.status_code == 401
    assert "signature does not match" in forged.json()["text"]
    old_body, old_headers = signed_request(block_action(message, "approve", user_id="U0ERIN"),
                                           timestamp=int(timezone.now().timestamp()) - 301)  # fmt: skip
    assert post_click(old_body, old_headers).status_code == 401
    stranger = post_click(*signed_request(block_action(message, "approve", user_id="U0NOBODY")))
    assert "not linked to a Bulwark user" in stranger.json()["text"]
    assert ApprovalRequest.objects.get(run=run).status == "pending"

    hook = channels.url + "/slack/actions/T0LAB/1/click"
    body, headers = signed_request(
        block_action(message, "approve", user_id="U0ERIN", response_url=hook)
    )
    clicked = post_click(body, headers)
    assert clicked.status_code == 200
    assert "Recorded your decision; the request is approved" in clicked.json()["text"]
    told, replaced = channels["slack"].responses[-2:]
    assert (told["response_type"], told["replace_original"]) == ("ephemeral", False)
    assert "Recorded your decision" in told["text"]
    assert replaced["replace_original"] is True
    assert "*approved* by erin" in replaced["text"]  # the buttons give way to the outcome
    replay = post_click(body, headers)
    assert replay.status_code == 401
    assert "replay" in replay.json()["text"]
    decision = ApprovalDecision.objects.get()
    assert (decision.user, decision.channel) == (erin, "slack")
    inline_dispatch.drain()
    assert len(CALLS) == 1
    second = post_click(*signed_request(block_action(message, "reject", user_id="U0ERIN")))
    assert "you have decided this request already" in second.json()["text"]


def test_the_slack_clicker_is_held_to_four_eyes_like_anyone(
    channels: Any, inline_dispatch: InlineDispatcher
) -> None:
    henry = approver("henry", IC, "analyst")
    ChatIdentity.objects.create(user=henry, provider="slack", subject="U0HENRY", team="T0LAB")
    run = start(gated(notify=[{"slack": "#soc"}]), inline_dispatch, user=henry)
    (message,) = channels["slack"].messages
    answer = post_click(*signed_request(block_action(message, "approve", user_id="U0HENRY")))
    assert "four-eyes" in answer.json()["text"]
    assert ApprovalRequest.objects.get(run=run).status == "pending"


def test_a_vendor_that_echoes_the_token_is_redacted_in_the_audit_trail(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    from integrations.slack.simulator import LAB_BOT_TOKEN

    channels["slack"].inject(503, f"upstream rejected token {LAB_BOT_TOKEN}", times=1)
    run = start(gated(notify=[{"slack": "#soc"}]), inline_dispatch, user=bob)
    failed = AuditEvent.objects.get(run_id=run.pk, kind="approval.notify_failed")
    assert "503" in failed.payload["error"] or "upstream" in failed.payload["error"]
    assert LAB_BOT_TOKEN not in str(failed.payload)
    assert "[redacted]" in failed.payload["error"]


def test_a_response_url_elsewhere_is_not_posted_to(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User, caplog: pytest.LogCaptureFixture
) -> None:
    erin = approver("erin", IC)
    ChatIdentity.objects.create(user=erin, provider="slack", subject="U0ERIN", team="T0LAB")
    start(gated(notify=[{"slack": "#soc"}]), inline_dispatch, user=bob)
    (message,) = channels["slack"].messages
    payload = block_action(
        message, "approve", user_id="U0ERIN", response_url="http://10.0.0.9/steal"
    )
    assert "Recorded" in post_click(*signed_request(payload)).json()["text"]
    assert channels["slack"].responses == []
    assert "response_url refused" in caplog.text


def test_the_pages_need_a_role_and_the_inbox_lists_what_waits(
    inline_dispatch: InlineDispatcher, bob: User, dave: User
) -> None:
    erin = approver("erin", IC)
    run = start(gated(), inline_dispatch, user=bob)
    request = ApprovalRequest.objects.get(run=run)
    nobody = User.objects.create_user("nobody")
    assert browser(nobody).get("/approvals/").status_code == 403
    assert browser(nobody).get(f"/approvals/{request.pk}/").status_code == 403
    inbox = browser(dave).get("/approvals/")
    assert inbox.status_code == 200
    assert f"/approvals/{request.pk}/".encode() in inbox.content
    viewer_page = browser(dave).get(f"/approvals/{request.pk}/")
    assert (
        b"You cannot decide this request: deciding approvals needs the approver role"
        in viewer_page.content
    )
    assert (
        browser(dave).post(f"/approvals/{request.pk}/", {"decision": "approve"}).status_code == 403
    )
    decided = browser(erin).post(
        f"/approvals/{request.pk}/", {"decision": "approve", "comment": "ok"}
    )
    assert b"Your decision is recorded. The request is approved." in decided.content
    assert ApprovalDecision.objects.get().channel == "web"


def test_an_announcement_whose_message_was_lost_is_sent_by_the_scheduler(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User, time_machine: Any, settings: Any
) -> None:
    from core.approval_models import ApprovalNotice
    from core.reconciler import sweep

    time_machine.move_to(timezone.now())
    approver("erin", IC)
    run = start(gated(notify=[{"slack": "#soc"}]), inline_dispatch, user=bob)
    # Back to before delivery: the message was lost (a Redis restart, a process that died).
    ApprovalNotice.objects.update(status="pending")
    channels["slack"].messages.clear()
    sweep()
    assert list(inline_dispatch.pending_announcements) == []  # too recent to be presumed lost
    time_machine.move_to(
        timezone.now() + timedelta(seconds=settings.BULWARK_REDISPATCH_SECONDS + 1)
    )
    sweep()
    inline_dispatch.drain()
    assert len(channels["slack"].messages) == 1
    notice = ApprovalNotice.objects.get()
    assert (notice.status, notice.attempts) == ("done", 2)
    inline_dispatch.announce([(notice.pk, "approval.requested")])  # a duplicate message
    inline_dispatch.drain()
    assert len(channels["slack"].messages) == 1
    assert ApprovalRequest.objects.get(run=run).status == "pending"


def test_an_announcement_whose_worker_died_is_sent_again_then_given_up(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User, time_machine: Any
) -> None:
    from core.approval_models import ApprovalNotice
    from core.reconciler import sweep

    time_machine.move_to(timezone.now())
    approver("erin", IC)
    run = start(gated(notify=[{"slack": "#soc"}]), inline_dispatch, user=bob)
    notice = ApprovalNotice.objects.get()
    channels["slack"].messages.clear()
    ApprovalNotice.objects.update(status="sending", claimed_at=timezone.now())  # then it died
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    sweep()  # back to pending; the next sweep sends it
    time_machine.move_to(timezone.now() + timedelta(minutes=1))
    sweep()
    inline_dispatch.drain()
    assert len(channels["slack"].messages) == 1
    ApprovalNotice.objects.update(status="sending", attempts=3, claimed_at=timezone.now())
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    sweep()
    notice.refresh_from_db()
    assert notice.status == "abandoned"
    gave_up = AuditEvent.objects.get(run_id=run.pk, kind="approval.notify_failed")
    assert "gave up after 3 attempts" in gave_up.payload["error"]


def test_a_click_is_trusted_only_for_the_workspace_of_the_secret_that_signed_it(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    from integrations.models import Connection

    erin = approver("erin", IC)
    # erin is linked in another workspace, and with no workspace at all.
    ChatIdentity.objects.create(user=erin, provider="slack", subject="U0ERIN", team="T0OTHER")
    ChatIdentity.objects.create(user=erin, provider="slack", subject="U0ERIN2", team="")
    run = start(gated(notify=[{"slack": "#soc"}]), inline_dispatch, user=bob)
    (message,) = channels["slack"].messages
    # Signed with the lab app's secret, but claiming another workspace: refused.
    other = post_click(
        *signed_request(block_action(message, "approve", user_id="U0ERIN", team="T0OTHER"))
    )
    assert other.status_code == 403
    assert "not the one this app's secret belongs to" in other.json()["text"]
    for user_id in ("U0ERIN", "U0ERIN2"):  # the lab's workspace: neither identity is of it
        answer = post_click(*signed_request(block_action(message, "approve", user_id=user_id)))
        assert "not linked to a Bulwark user" in answer.json()["text"]
    # A connection that names no workspace trusts no click.
    Connection.objects.filter(integration="slack").update(options={})
    ChatIdentity.objects.create(user=erin, provider="slack", subject="U0ERIN3", team="T0LAB")
    blind = post_click(*signed_request(block_action(message, "approve", user_id="U0ERIN3")))
    assert blind.status_code == 403
    assert "names no team_id" in blind.json()["text"]
    assert ApprovalRequest.objects.get(run=run).status == "pending"


def test_a_refusal_through_a_link_is_audited(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    outsider = approver("ivan", "network-team")
    run = start(gated(notify=[{"teams": True}]), inline_dispatch, user=bob)
    path = LINK.match(channels["teams"].cards[0]["actions"][0]["url"]).group(1)
    refused = browser(outsider).post(path, {"decision": "approve"})
    assert refused.status_code == 403
    event = AuditEvent.objects.get(run_id=run.pk, kind="approval.decision_refused")
    assert (event.actor, event.payload["channel"]) == ("user:ivan", "teams")
    assert "only members of" in event.payload["reason"]


def test_one_refused_recipient_does_not_silence_the_others(
    channels: Any, inline_dispatch: InlineDispatcher, bob: User
) -> None:
    approver("erin", IC), approver("frank", IC)
    channels.smtp.reply_next("RCPT", "550 5.1.1 no such mailbox")
    run = start(gated(notify=[{"email": []}]), inline_dispatch, user=bob)
    recipients = [a for m in channels.smtp.messages for a in m.recipients]
    assert recipients == ["frank@example.test"]
    failed = AuditEvent.objects.get(run_id=run.pk, kind="approval.notify_failed")
    assert failed.payload["error"].startswith("erin@example.test:")
    sent = AuditEvent.objects.get(run_id=run.pk, kind="approval.notified")
    assert sent.payload["targets"] == ["email:frank@example.test"]
