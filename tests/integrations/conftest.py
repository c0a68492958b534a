"""A tiny local HTTP server that records what it receives, and attempt contexts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

from integrations.context import ActionContext, ConnectionInfo


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    url: str
    port: int
    requests: list[Seen] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._reply(
            status,
            json.dumps(value).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.record.requests.append(Seen(self.command, parts.path, query, headers, body))

        def arg(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        if parts.path == "/echo":
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            self._json(
                200,
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": query,
                    "headers": headers,
                    "body": body.decode(),
                    "json": parsed,
                },
            )
        elif parts.path.startswith("/status/"):
            extra = {"Retry-After": arg("retry_after")} if arg("retry_after") else {}
            reflect = headers.get("authorization", "") if arg("reflect") else ""
            self._json(
                int(parts.path.rsplit("/", 1)[1]), {"error": "status", "auth": reflect}, extra
            )
        elif parts.path == "/slow":
            time.sleep(float(arg("seconds", "2")))
            self._json(200, {"slept": True})
        elif parts.path == "/redirect":
            self._reply(int(arg("code", "302")), b"", {"Location": arg("to")})
        elif parts.path == "/loop":
            self._reply(302, b"", {"Location": "/loop"})
        elif parts.path == "/text":
            self._reply(200, b"plain words", {"Content-Type": "text/plain"})
        elif parts.path == "/big":
            size = int(arg("bytes", "1000"))
            if arg("declared"):
                self._reply(200, b"x" * size)
            else:  # no Content-Length: the body ends when the connection closes
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"x" * size)
        else:
            self._json(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    record: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up early (timeouts, size caps) break the pipe; that is the point


@pytest.fixture
def start_server() -> Iterator[Callable[[], LocalServer]]:
    """Start local servers on 127.0.0.1 (as many as a test needs); stopped afterwards."""
    servers: list[_Server] = []

    def start() -> LocalServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        port = server.server_address[1]
        server.record = LocalServer(url=f"http://127.0.0.1:{port}", port=port)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server.record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def commander(db: None) -> Any:
    """An approver in every approver group the library playbooks name."""
    from django.contrib.auth.models import Group, User

    from accounts import roles

    user = User.objects.create_user(username="ic", password="ic-pw-123456", email="ic@example.test")
    for name in (roles.APPROVER, "incident-commanders", "change-approvers", "soc-leads"):
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def web(start_server: Callable[[], LocalServer]) -> LocalServer:
    return start_server()


def make_ctx(connection: ConnectionInfo | None = None, *, timeout: float = 5.0) -> ActionContext:
    return ActionContext(
        run_id=7,
        step_id="call",
        item_index=None,
        attempt=1,
        idempotency_key="run-7:call:-:1",
        timeout_seconds=timeout,
        connection=connection,
    )


def local_connection(
    server: LocalServer, credentials: dict[str, Any] | None = None
) -> ConnectionInfo:
    return ConnectionInfo(
        name="local",
        integration="http",
        base_url=server.url,
        credentials=credentials or {},
        allow_private_network=True,
    )


@pytest.fixture
def encryption_keys(settings: Any) -> list[str]:
    """Fresh Fernet keys for the test, so no test depends on var/encryption.key."""
    keys = [Fernet.generate_key().decode()]
    settings.ENCRYPTION_KEYS = keys
    return keys


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """The persona fixtures create users; real password hashing costs a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def lab_server() -> Iterator[Any]:
    """Every vendor simulator, served once for the session on an ephemeral port."""
    from integrations.lab.server import Lab

    lab = Lab().start()
    yield lab
    lab.stop()


@pytest.fixture
def lab(lab_server: Any) -> Any:
    """The lab with every simulator's state, calls and faults reset, and no cached token."""
    from integrations.oauth import tokens

    lab_server.reset()
    tokens.clear()
    return lab_server


def lab_connection(lab: Any, vendor: str, credentials: dict[str, Any],
                   name: str | None = None) -> ConnectionInfo:  # fmt: skip
    return ConnectionInfo(
        name=name or f"lab-{vendor}",
        integration=vendor,
        base_url=lab.base_url(vendor),
        credentials=credentials,
        allow_private_network=True,
    )


def poll_until_done(call: Callable[[ActionContext], Any], ctx: ActionContext,
                    *, limit: int = 50, pause: float = 0.05) -> tuple[Any, int]:  # fmt: skip
    """Call an asynchronous action as the engine would: again with its progress after
    each PollAgain (without waiting the interval it asked for). Returns its output and
    how many polls it asked for."""
    from integrations.context import PollAgain

    for polls in range(limit):
        try:
            return call(ctx), polls
        except PollAgain as again:
            ctx.progress = again.progress
            ctx.attempt += 1
            time.sleep(pause)
    raise AssertionError(f"still polling after {limit} calls")


def approve_waiting(run: Any, approver: Any) -> int:
    """Approve every pending request of `run` as `approver`; returns how many."""
    from core.approval_models import ApprovalRequest
    from core.approvals.decide import decide

    pending = ApprovalRequest.objects.filter(run=run, status="pending").values_list("pk", flat=True)
    for request_id in pending:
        decide(request_id=request_id, user=approver, approve=True, comment="approved by the test")
    return len(pending)


def run_to_the_end(run: Any, inline: Any, time_machine: Any, *, rounds: int = 80,
                   approver: Any = None) -> Any:  # fmt: skip
    """Drive a run with the inline dispatcher: drain the workers' queue, approve what
    waits for `approver` (when given), and whenever nothing is queued, let 2.5 s pass and
    sweep (timers, polls)."""
    from datetime import timedelta

    from django.utils import timezone

    from core.reconciler import sweep

    for _ in range(rounds):
        inline.drain()
        run.refresh_from_db()
        if run.finished_at is not None:
            return run
        waiting = approver is not None and run.status == "waiting_approval"
        if waiting and approve_waiting(run, approver):
            continue
        time_machine.move_to(timezone.now() + timedelta(seconds=2.5))
        sweep()
    from core.models import StepRun

    stuck = list(
        StepRun.objects.filter(run=run)
        .exclude(status="succeeded")
        .values_list("step_id", "status", "error")
    )
    raise AssertionError(f"run {run.pk} is still {run.status}: {stuck}")
