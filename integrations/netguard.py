"""SSRF guard: which addresses outbound HTTP may reach, enforced where sockets are opened.

The guard lives in the network backend, below httpx and httpcore: the host is resolved once,
every resolved address is vetted, and the socket is opened to the vetted IP literal, so a
second DNS answer (rebinding) can never redirect the connection. TLS still verifies the
original host name, because httpcore takes `server_hostname` from the request's origin,
not from the address `connect_tcp` dialled. Every redirect hop opens its connections
through the same backend, so each hop is vetted too.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable

import httpcore
import httpx

from integrations.errors import PermanentError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> IP literals, in the resolver's order.
Resolver = Callable[[str, int], list[str]]

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)

# Cloud instance-metadata endpoints hand out credentials; no connection may reach them,
# not even one that allows the private network.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)

# Named explicitly so the policy does not depend on how a Python release defines is_global.
_FORBIDDEN_NETWORKS: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...] = tuple(
    (reason, ipaddress.ip_network(net))
    for reason, net in (
        ("unspecified", "0.0.0.0/8"),
        ("private", "10.0.0.0/8"),
        ("shared (CGNAT)", "100.64.0.0/10"),
        ("loopback", "127.0.0.0/8"),
        ("link-local", "169.254.0.0/16"),
        ("private", "172.16.0.0/12"),
        ("reserved", "192.0.0.0/24"),
        ("private", "192.168.0.0/16"),
        ("reserved", "198.18.0.0/15"),
        ("multicast", "224.0.0.0/4"),
        ("reserved", "240.0.0.0/4"),
        ("unspecified", "::/128"),
        ("loopback", "::1/128"),
        ("private (local NAT64)", "64:ff9b:1::/48"),
        ("reserved", "100::/64"),
        ("private", "fc00::/7"),
        ("link-local", "fe80::/10"),
        ("site-local", "fec0::/10"),
        ("multicast", "ff00::/8"),
    )
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4, Teredo)."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _IPV4_COMPATIBLE and int(addr) > 1:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    return None


def forbidden_reason(ip: str | IPAddress) -> str | None:
    """Why `ip` is off limits to outbound requests ("loopback", "private", …), or None."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0] if isinstance(ip, str) else ip)
    if addr in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(addr, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(addr)):
        return forbidden_reason(embedded)
    for reason, network in _FORBIDDEN_NETWORKS:
        if addr.version == network.version and addr in network:
            return reason
    if not addr.is_global or addr.is_multicast or addr.is_reserved:
        return "non-global"
    return None


def is_forbidden_address(ip: str | IPAddress) -> bool:
    """True for loopback, private, link-local, CGNAT, multicast, reserved and similar."""
    return forbidden_reason(ip) is not None


def _is_local_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def refused(host: str, ip: str, reason: str) -> PermanentError:
    """The error for a target the policy refuses."""
    if reason == "cloud metadata":
        advice = "cloud metadata endpoints are never reachable"
    else:
        advice = "the connection must set allow_private_network"
    return PermanentError(
        f"refusing to connect to {host} ({ip}): {reason} address; {advice}",
        kind="ssrf",
        details={"host": host, "address": ip, "reason": reason},
    )


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve `host` with the system resolver, once; IP literals come back unchanged."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.NetworkBackend):
    """A `SyncBackend` that vets every address before it connects, and only to that address."""

    def __init__(
        self,
        *,
        allow_private_network: bool = False,
        resolver: Resolver | None = None,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.allow_private_network = allow_private_network
        self._resolve = resolver or system_resolver
        self._inner = inner or httpcore.SyncBackend()

    def vet(self, host: str, port: int) -> list[str]:
        """Resolve `host` and return its addresses; raise if any of them is forbidden."""
        if _is_local_name(host) and not self.allow_private_network:
            raise refused(host, "local name", "loopback")
        try:
            addresses = self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        for ip in addresses:
            reason = forbidden_reason(ip)
            if reason == "cloud metadata" or (reason and not self.allow_private_network):
                raise refused(host, ip, reason)
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for ip in self.vet(host, port):
            try:
                # An IP literal: the system resolver is not consulted a second time.
                return self._inner.connect_tcp(
                    ip,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise PermanentError("refusing to connect to a unix socket", kind="ssrf")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds; every client shares one verifying context.
    return httpx.create_ssl_context(verify=True, trust_env=False)


def check_url(url: httpx.URL) -> None:
    """Refuse schemes other than http/https and URLs carrying userinfo (`a@b` confusion)."""
    if url.scheme not in ALLOWED_SCHEMES:
        scheme = f"the {url.scheme}: scheme" if url.scheme else "a URL without a scheme"
        raise PermanentError(f"refusing {scheme}: only http and https are allowed", kind="ssrf")
    if url.userinfo:
        raise PermanentError(
            "refusing a URL with user information before the host; put credentials "
            "in the connection instead",
            kind="ssrf",
        )


class GuardedTransport(httpx.HTTPTransport):
    """httpx's HTTP transport whose connection pool dials through `GuardedBackend`."""

    def __init__(
        self,
        *,
        allow_private_network: bool = False,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        resolver: Resolver | None = None,
    ) -> None:
        if isinstance(verify, ssl.SSLContext):
            ssl_context = verify
        elif verify:
            ssl_context = _default_ssl_context()
        else:
            ssl_context = httpx.create_ssl_context(verify=False, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # The same pool httpx would build (see httpx/_transports/default.py), with our backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(
                allow_private_network=allow_private_network, resolver=resolver
            ),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_url(request.url)
        return super().handle_request(request)
