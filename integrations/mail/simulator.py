"""An SMTP submission server for the lab (aiosmtpd): STARTTLS required before AUTH,
messages recorded, and reply codes injectable (421/450 transient, 550/554 permanent)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import tempfile
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# aiosmtpd logs every SMTP command at INFO; the lab's own log is enough.
logging.getLogger("mail.log").setLevel(logging.WARNING)

LAB_USERNAME = "bulwark@lab.example"
LAB_PASSWORD = "lab-smtp-password"  # noqa: S105 - the lab's own, not a secret


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: Message
    tls: bool
    authenticated_as: str | None


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, made at start (the lab's CA is itself)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bulwark lab SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "lab-smtp.crt", directory / "lab-smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


class _Handler:
    def __init__(self, sim: SMTPSimulator) -> None:
        self.sim = sim

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        reply = self.sim.take_reply("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.sim.take_reply("DATA")
        if reply:
            return reply
        login = session.auth_data if session.authenticated else None
        with self.sim.lock:
            self.sim.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                              message_from_bytes(envelope.content),
                                              session.ssl is not None, login))  # fmt: skip
        return "250 Message accepted for delivery"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(), auth_data.password.decode()) == (LAB_USERNAME, LAB_PASSWORD)  # fmt: skip
    return AuthResult(success=ok, handled=False, auth_data=LAB_USERNAME if ok else None)


class SMTPSimulator:
    """The lab's mail server, on its own port (SMTP is not HTTP)."""

    name = "email"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, directory: Path | None = None
    ) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.replies: list[tuple[str, str]] = []  # (stage, reply) for the next commands
        self.directory = directory or Path(tempfile.mkdtemp(prefix="bulwark-lab-smtp-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        # Kept across restarts, so connections that trust it stay valid.
        self.cert_file, key_file = self.directory / "lab-smtp.crt", self.directory / "lab-smtp.key"
        if not (self.cert_file.exists() and key_file.exists()):
            self.cert_file, key_file = _self_signed(self.directory)
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, key_file)
        self.host, self.port = host, port or _free_port(host)
        self.controller = Controller(_Handler(self), hostname=host, port=self.port, tls_context=context,
                                     require_starttls=True, auth_require_tls=True,
                                     authenticator=_authenticate, auth_exclude_mechanism=["CRAM-MD5"])  # fmt: skip

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> SMTPSimulator:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def reply_next(self, stage: str, reply: str) -> None:
        """Answer the next RCPT or DATA with `reply` (e.g. "450 4.2.0 Mailbox busy")."""
        with self.lock:
            self.replies.append((stage, reply))

    def take_reply(self, stage: str) -> str | None:
        with self.lock:
            for index, (wanted, reply) in enumerate(self.replies):
                if wanted == stage:
                    del self.replies[index]
                    return reply
        return None

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.replies.clear()


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
