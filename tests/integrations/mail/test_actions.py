"""email.send against the lab's SMTP server: STARTTLS before AUTH, headers, reply codes."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.context import ActionContext, ConnectionInfo
from integrations.errors import PermanentError, TransientError
from integrations.mail import actions
from integrations.mail.simulator import LAB_PASSWORD, LAB_USERNAME
from tests.integrations.conftest import make_ctx

pytestmark = pytest.mark.django_db


def ctx_for(lab: Any, *, password: str = LAB_PASSWORD, trust_lab_ca: bool = True,
            private: bool = True) -> ActionContext:  # fmt: skip
    url, ca = lab.smtp_settings()
    options = {"from": LAB_USERNAME, **({"tls_ca_file": ca} if trust_lab_ca else {})}
    info = ConnectionInfo(name="lab-email", integration="email", base_url=url,
                          credentials={"username": LAB_USERNAME, "password": password},
                          allow_private_network=private, options=options)  # fmt: skip
    return make_ctx(info)


def send(ctx: ActionContext, **extra: Any) -> Any:
    return actions.send(
        ctx, to=["soc@corp.example"], subject="Host contained", text="WS-FIN-042", **extra
    )


def test_a_message_goes_over_starttls_after_login_with_its_correlation_headers(lab: Any) -> None:
    ctx = ctx_for(lab)
    output = send(ctx, cc=["ciso@corp.example"], html="<b>WS-FIN-042</b>")
    assert output["accepted"] == ["ciso@corp.example", "soc@corp.example"]
    (received,) = lab.smtp.messages
    assert received.tls is True
    assert received.authenticated_as == LAB_USERNAME
    assert received.sender == LAB_USERNAME
    assert received.recipients == ["soc@corp.example", "ciso@corp.example"]
    message = received.message
    assert (message["Subject"], message["To"], message["Cc"]) == (
        "Host contained",
        "soc@corp.example",
        "ciso@corp.example",
    )
    assert message["Message-ID"] == output["message_id"] == actions.message_id(ctx, "lab.example")
    assert message["X-Bulwark-Run-Id"] == "7"
    assert message["X-Bulwark-Idempotency-Key"] == ctx.idempotency_key


def test_the_message_id_is_stable_across_retries_of_a_step(lab: Any) -> None:
    assert send(ctx_for(lab))["message_id"] == send(ctx_for(lab))["message_id"]


def test_a_certificate_nobody_vouches_for_is_refused(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        send(ctx_for(lab, trust_lab_ca=False))
    assert failed.value.kind == "tls"
    assert lab.smtp.messages == []


def test_a_wrong_password_is_535_permanent_and_never_shown(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        send(ctx_for(lab, password="not-the-password-1"))
    assert failed.value.kind == "auth"
    assert failed.value.details["smtp_code"] == 535
    assert "not-the-password-1" not in failed.value.message


@pytest.mark.parametrize(("stage", "reply", "error"), [
    ("RCPT", "450 4.2.1 Mailbox busy, try later", TransientError),
    ("DATA", "451 4.3.0 Local error in processing", TransientError),
    ("DATA", "554 5.7.1 Message rejected as spam", PermanentError),
])  # fmt: skip
def test_reply_codes_are_classified_transient_or_permanent(lab: Any, stage: str, reply: str,
                                                           error: type[Exception]) -> None:  # fmt: skip
    lab.smtp.reply_next(stage, reply)
    with pytest.raises(error) as failed:
        send(ctx_for(lab))
    assert reply.split()[0] in str(failed.value)


def test_the_ssrf_guard_applies_to_mail_servers_too(lab: Any) -> None:
    from integrations.errors import PermanentError as Refused

    with pytest.raises(Refused) as failed:
        send(ctx_for(lab, private=False))
    assert failed.value.kind == "ssrf"
