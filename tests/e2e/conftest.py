"""End-to-end fixtures: real `worker` and `scheduler` processes on PostgreSQL + Redis."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

LEASE_SECONDS = 3.0
E2E_ENV = {
    "BULWARK_LEASE_SECONDS": str(LEASE_SECONDS),
    "BULWARK_REDISPATCH_SECONDS": "3",
    "BULWARK_SCHEDULER_TICK_SECONDS": "0.5",
    "BULWARK_FAULT_ACTIONS": "1",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def e2e_ready(transactional_db: None) -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("end-to-end tests need DATABASE_URL (PostgreSQL) and REDIS_URL")
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@dataclass
class Processes:
    """The worker supervisor and the scheduler, as an operator would run them."""

    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        db = connection.settings_dict
        url = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        return dict(
            os.environ,
            **E2E_ENV,
            DATABASE_URL=url,
            REDIS_URL=settings.REDIS_URL,
            BULWARK_ENCRYPTION_KEY=",".join(settings.ENCRYPTION_KEYS),
            BULWARK_SECRET_KEY=settings.SECRET_KEY,
        )

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.logs.glob("*.log"))


@pytest.fixture
def processes(
    e2e_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Processes]:
    for key, value in E2E_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(settings, "BULWARK_LEASE_SECONDS", LEASE_SECONDS)
    procs = Processes(logs=tmp_path)
    procs.start("worker", "worker", "--processes", "2", "--threads", "4")
    procs.start("scheduler", "scheduler")
    try:
        yield procs
    finally:
        procs.stop()
        connection.close()


@dataclass
class Peer:
    """A local HTTP service that applies each effect once per Idempotency-Key."""

    url: str
    requests: list[dict[str, str]] = field(default_factory=list)
    applied: set[str] = field(default_factory=set)
    hold_first: float = 0.0
    received: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def peer() -> Iterator[Peer]:
    state = Peer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            key = self.headers.get("Idempotency-Key", "")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                first = not state.requests
                state.requests.append({"key": key, "path": self.path})
                state.applied.add(key)
            state.received.set()
            if first and state.hold_first:
                time.sleep(state.hold_first)
            body = json.dumps({"applied": key}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The worker that sent it may have been killed: exactly the case under test.
            with contextlib.suppress(BrokenPipeError):
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


def wait_for(
    predicate: Callable[[], object], timeout: float, message: str, interval: float = 0.05
) -> float:
    """Poll until `predicate` is truthy; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
