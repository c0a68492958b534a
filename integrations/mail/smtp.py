"""SMTP through the SSRF guard: the server's name is resolved and vetted once, the socket
goes to the vetted address, and TLS still verifies the server's name."""

from __future__ import annotations

import smtplib
import socket
import ssl
from typing import Any

from integrations.netguard import GuardedBackend


class GuardedSMTP(smtplib.SMTP):
    """smtplib.SMTP that connects to a vetted address (STARTTLS checks the host name)."""

    def __init__(self, *, address: str, **kwargs: Any) -> None:
        self._address = address
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


class GuardedSMTPS(smtplib.SMTP_SSL):
    """Implicit TLS (port 465) to a vetted address, verifying the host name."""

    def __init__(self, *, address: str, **kwargs: Any) -> None:
        self._address = address
        super().__init__(**kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((self._address, port), timeout, self.source_address)
        return self.context.wrap_socket(raw, server_hostname=self._host)  # type: ignore[attr-defined] # smtplib sets it in connect()


def vetted_address(host: str, port: int, *, allow_private_network: bool) -> str:
    """The first address of `host`, after every one of them passed the SSRF policy."""
    import httpcore

    from integrations.errors import TransientError

    try:
        return GuardedBackend(allow_private_network=allow_private_network).vet(host, port)[0]
    except httpcore.ConnectError as exc:
        raise TransientError(str(exc), kind="connection", details={"request_sent": False}) from None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verification always on; a private CA (the lab's, a company's relay) can be trusted."""
    context = (
        ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
