"""E-mail over SMTP (vendor-apis.md §3.6): submission with STARTTLS (or implicit TLS)
and AUTH, a Message-ID derived from the step's idempotency key and an X-Bulwark-Run-Id
header; 4xx replies are transient, 5xx permanent."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx

from integrations.context import ActionContext
from integrations.errors import PermanentError, TransientError
from integrations.http_client import credential_secrets, redact_text
from integrations.mail.smtp import GuardedSMTP, GuardedSMTPS, tls_context, vetted_address
from integrations.probes import prober
from integrations.registry import action
from integrations.vendor import require_connection


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _quit(smtp: smtplib.SMTP) -> None:
    """End the session; once the message was accepted, a failed QUIT changes nothing."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def message_id(ctx: ActionContext, domain: str) -> str:
    digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:32]
    return f"<bulwark.{digest}@{domain}>"


class Mailer:
    """One SMTP session for an attempt, as the connection describes it:
    base_url smtp://host:587 (STARTTLS) or smtps://host:465; credentials username and
    password; options `from` (the sender) and `tls_ca_file` (a private CA to trust)."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.connection = require_connection(ctx, "email")
        self.secrets = credential_secrets(self.connection.credentials)
        url = httpx.URL(self.connection.base_url)
        self.host, self.implicit_tls = url.host, url.scheme == "smtps"
        self.port = url.port or (465 if self.implicit_tls else 587)

    def _fail(self, message: str, exc: BaseException | None = None, *, code: int | None = None,
              sent: bool = False) -> Exception:  # fmt: skip
        text = redact_text(f"SMTP {self.host}:{self.port}: {message}", self.secrets)
        details: dict[str, object] = {"smtp_code": code, "request_sent": sent}
        if code is not None and 400 <= code < 500:
            return TransientError(text, kind="smtp_transient", details=details)
        if code is not None:
            return PermanentError(
                text, kind="auth" if code == 535 else "smtp_rejected", details=details
            )
        return TransientError(text, kind="connection", details=details)

    def send(self, message: EmailMessage, recipients: list[str]) -> dict[str, Any]:
        options = self.connection.options
        address = vetted_address(
            self.host, self.port, allow_private_network=self.connection.allow_private_network
        )
        context = tls_context(options.get("tls_ca_file"))
        timeout = self.ctx.remaining()
        sent = False
        try:
            if self.implicit_tls:
                smtp: smtplib.SMTP = GuardedSMTPS(address=address, host=self.host, port=self.port,
                                                  timeout=timeout, context=context)  # fmt: skip
            else:
                smtp = GuardedSMTP(address=address, host=self.host, port=self.port, timeout=timeout)
            try:
                smtp.ehlo()
                if not self.implicit_tls:
                    smtp.starttls(context=context)  # never AUTH or DATA in the clear
                    smtp.ehlo()
                username = self.connection.credentials.get("username")
                if username:
                    smtp.login(str(username), str(self.connection.credentials.get("password", "")))
                self.ctx.check()
                sent = True  # from here on the server may have the message
                refused = smtp.send_message(message, to_addrs=recipients)
            finally:
                _quit(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            raise self._fail(
                f"every recipient was refused: {exc.recipients}", code=max(codes)
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise self._fail(f"{exc.smtp_code} {_text(exc.smtp_error)}",
                             code=exc.smtp_code, sent=sent) from None  # fmt: skip
        except smtplib.SMTPNotSupportedError:
            raise PermanentError(f"SMTP {self.host}:{self.port} does not offer STARTTLS; refusing to send in the clear",
                                 kind="tls") from None  # fmt: skip
        except ssl.SSLError as exc:
            raise PermanentError(
                f"SMTP {self.host}:{self.port}: TLS failed: {exc}", kind="tls"
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise self._fail(f"{type(exc).__name__}: {exc}", sent=sent) from None
        return {"message_id": message["Message-ID"], "accepted": sorted(set(recipients) - set(refused)),
                "refused": sorted(refused)}  # fmt: skip


@action("email.send", plan='e-mail {to}: "{subject}"', side_effect="write", connection="email", connection_required=True,
        output="`message_id`, and the recipients `accepted` and `refused` by the server")  # fmt: skip
def send(ctx: ActionContext, *, to: list[str], subject: str, text: str, html: str | None = None,
         cc: list[str] | None = None, reply_to: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Send an e-mail through the connection's SMTP server (STARTTLS, then AUTH)."""
    mailer = Mailer(ctx)
    sender = str(
        mailer.connection.options.get("from") or mailer.connection.credentials.get("username") or ""
    )
    if "@" not in sender:
        raise PermanentError(
            "the email connection needs a `from` address in its options", kind="connection"
        )
    recipients = [*to, *(cc or [])]
    if not recipients or not all("@" in r for r in recipients):
        raise PermanentError(f"not e-mail addresses: {recipients}", kind="validation")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, ", ".join(to), subject
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = reply_to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id(ctx, sender.rsplit("@", 1)[1])
    message["X-Bulwark-Run-Id"] = str(ctx.run_id)
    message["X-Bulwark-Idempotency-Key"] = ctx.idempotency_key
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return mailer.send(message, recipients)


@prober("email")
def check_connection(ctx: ActionContext) -> str:
    """Connect, STARTTLS and log in, without sending anything."""
    mailer = Mailer(ctx)
    address = vetted_address(
        mailer.host, mailer.port, allow_private_network=mailer.connection.allow_private_network
    )
    context = tls_context(mailer.connection.options.get("tls_ca_file"))
    try:
        cls = GuardedSMTPS if mailer.implicit_tls else GuardedSMTP
        kwargs: dict[str, Any] = {"context": context} if mailer.implicit_tls else {}
        with cls(
            address=address, host=mailer.host, port=mailer.port, timeout=ctx.remaining(), **kwargs
        ) as smtp:
            smtp.ehlo()
            if not mailer.implicit_tls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if mailer.connection.credentials.get("username"):
                smtp.login(str(mailer.connection.credentials["username"]),
                           str(mailer.connection.credentials.get("password", "")))  # fmt: skip
    except smtplib.SMTPResponseException as exc:
        raise mailer._fail(f"{exc.smtp_code} {_text(exc.smtp_error)}", code=exc.smtp_code) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise mailer._fail(f"{type(exc).__name__}: {exc}") from None
    return "TLS and login succeeded"
