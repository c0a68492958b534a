"""The SSRF guard: address policy, guarded backend (rebinding) and guarded transport."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpcore
import httpx
import pytest

from integrations import netguard
from integrations.errors import PermanentError
from integrations.netguard import GuardedBackend, GuardedTransport, is_forbidden_address
from tests.integrations.conftest import LocalServer

FORBIDDEN_ADDRESSES = [
    "127.0.0.1",
    "127.255.0.9",
    "0.0.0.0",  # noqa: S104
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "169.254.169.254",
    "169.254.1.1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "100.64.0.1",
    "100.127.255.254",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd12:3456::1",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "fd00:ec2::254",
]
ALLOWED_ADDRESSES = [
    "8.8.8.8",
    "93.184.215.14",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "2002:808:808::",
]


@pytest.mark.parametrize("ip", FORBIDDEN_ADDRESSES)
def test_internal_addresses_are_forbidden(ip: str) -> None:
    assert is_forbidden_address(ip)


@pytest.mark.parametrize("ip", ALLOWED_ADDRESSES)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert not is_forbidden_address(ip)


def _guarded_client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(transport=GuardedTransport(**kwargs), trust_env=False, timeout=2)


FORBIDDEN_URLS = [
    "http://127.0.0.1/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://localhost/",
    "http://localhost./",
    "http://api.localhost/",
]


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
def test_urls_naming_internal_addresses_are_refused_before_connecting(url: str) -> None:
    host = httpx.URL(url).host
    if not host.rstrip(".").endswith("localhost"):
        try:
            socket.getaddrinfo(host, 80)
        except OSError:
            pytest.skip(f"this resolver does not accept {host}")
    with _guarded_client() as client, pytest.raises(PermanentError) as caught:
        client.get(url)
    assert caught.value.kind == "ssrf"
    assert caught.value.message.startswith(f"refusing to connect to {host} (")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_x",
        "dict://127.0.0.1:11211/",
        "ftp://example.com/",
    ],
)
def test_schemes_other_than_http_are_refused(url: str) -> None:
    with _guarded_client() as client, pytest.raises(PermanentError) as caught:
        client.get(url)
    assert caught.value.kind == "ssrf"


def test_userinfo_before_the_host_is_refused(web: LocalServer) -> None:
    with _guarded_client(allow_private_network=True) as client:
        assert client.get(f"{web.url}/echo").status_code == 200
        with pytest.raises(PermanentError, match="user information"):
            client.get(f"http://example.com@127.0.0.1:{web.port}/echo")


def test_loopback_is_reachable_only_when_the_private_network_is_allowed(web: LocalServer) -> None:
    with _guarded_client() as client, pytest.raises(PermanentError, match="loopback"):
        client.get(f"{web.url}/echo")
    assert web.requests == []
    with _guarded_client(allow_private_network=True) as client:
        assert client.get(f"{web.url}/echo").json()["path"] == "/echo"


def test_cloud_metadata_is_refused_even_when_the_private_network_is_allowed() -> None:
    with (
        _guarded_client(allow_private_network=True) as client,
        pytest.raises(PermanentError) as caught,
    ):
        client.get("http://169.254.169.254/latest/meta-data/")
    assert caught.value.kind == "ssrf"
    assert "metadata" in caught.value.message


class _Recorder(httpcore.NetworkBackend):
    """An inner backend that records where it was asked to connect, and connects nowhere."""

    def __init__(self) -> None:
        self.dialled: list[tuple[str, int]] = []

    def connect_tcp(
        self, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.NetworkStream:
        self.dialled.append((host, port))
        return httpcore.NetworkStream()


def _flipping_getaddrinfo(answers: list[str]) -> Callable[..., list[Any]]:
    """A getaddrinfo that gives the next answer each time it is asked (a TTL-0 rebinding)."""

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        ip = answers.pop(0)
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]

    return getaddrinfo


def test_dns_rebinding_never_reaches_the_second_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        socket, "getaddrinfo", _flipping_getaddrinfo(["93.184.215.14", "127.0.0.1"])
    )
    recorder = _Recorder()
    backend = GuardedBackend(inner=recorder)
    backend.connect_tcp("rebind.example", 80)
    with pytest.raises(PermanentError, match=r"rebind\.example \(127\.0\.0\.1\)"):
        backend.connect_tcp("rebind.example", 80)
    # The vetted literal was dialled, never the name (which would be resolved again).
    assert recorder.dialled == [("93.184.215.14", 80)]


def test_one_internal_address_among_public_ones_refuses_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ("8.8.8.8", "10.0.0.5")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    recorder = _Recorder()
    with pytest.raises(PermanentError, match=r"10\.0\.0\.5"):
        GuardedBackend(inner=recorder).connect_tcp("mixed.example", 443)
    assert recorder.dialled == []


def test_unix_sockets_are_refused() -> None:
    with pytest.raises(PermanentError):
        GuardedBackend(allow_private_network=True).connect_unix_socket("/var/run/docker.sock")


def test_a_redirect_from_an_allowed_server_to_an_internal_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, web: LocalServer
) -> None:
    # Only the test server's address passes the policy; every other internal one does not.
    policy = netguard.forbidden_reason
    monkeypatch.setattr(
        netguard, "forbidden_reason", lambda ip: None if ip == "127.0.0.1" else policy(ip)
    )
    with httpx.Client(
        transport=GuardedTransport(), follow_redirects=True, trust_env=False
    ) as client:
        assert client.get(f"{web.url}/echo").status_code == 200
        with pytest.raises(PermanentError) as caught:
            client.get(f"{web.url}/redirect", params={"to": "http://10.1.2.3/admin"})
    assert caught.value.kind == "ssrf"
    assert "10.1.2.3" in caught.value.message
    assert [r.path for r in web.requests] == ["/echo", "/redirect"]
