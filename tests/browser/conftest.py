"""Browser tests: Debian's chromium, driven by Playwright, against `manage.py standalone`
on a fresh SQLite database, as a new user runs Bulwark. Every page visited is saved as a
screenshot under BULWARK_BROWSER_ARTIFACTS (default var/browser-artifacts).

Without /usr/bin/chromium these tests skip, unless BULWARK_BROWSER_TESTS=1 (as in CI),
when they fail instead: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# axe-core (MPL-2.0), for the accessibility checks only: never served by the app.
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
PASSWORD = "correct horse battery staple"
# Users by role; erin and frank both approve for the "soc" group.
USERS = {"alice": ["author", "analyst"], "bob": ["analyst"], "carol": ["auditor"],
         "erin": ["approver", "soc"], "frank": ["approver", "soc"], "root": ["admin"]}  # fmt: skip

SEED = """
from django.contrib.auth.models import Group, User
from playbooks.versions import create_playbook, publish_version
for name, groups in {users!r}.items():
    user = User.objects.create_user(name, password={password!r}, is_staff=name == "root",
                                    is_superuser=name == "root")
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
for text in {playbooks!r}:
    publish_version(version=create_playbook(definition=text, actor="system"), actor="system")
"""

TRIAGE = """name: browser-triage
title: Triage a host
inputs:
  host: {type: string, required: true, description: The host to look at}
steps:
  - id: look
    title: Look the host up
    action: util.echo
    with: {message: "looking at {{ inputs.host }}"}
  - id: note
    title: Write it down
    needs: [look]
    action: util.echo
    with: {message: "noted"}
"""

GATED = """name: browser-gated
title: Act after approval
inputs:
  host: {type: string, required: true}
steps:
  - id: check
    action: util.echo
    with: {message: "checking {{ inputs.host }}"}
  - id: approve
    needs: [check]
    approval:
      approvers: [soc]
      timeout: 30m
      message: "Act on {{ inputs.host }}?"
  - id: act
    needs: [approve]
    action: util.echo
    with: {message: "acted"}
"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def _required() -> bool:
    return os.environ.get("BULWARK_BROWSER_TESTS") == "1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        if _required():
            pytest.fail(f"browser tests need {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"browser tests need {CHROMIUM}")
    var = tmp_path_factory.mktemp("browser-var")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(BULWARK_VAR_DIR=str(var), BULWARK_SCHEDULER_TICK_SECONDS="0.3")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    seed = SEED.format(users=USERS, password=PASSWORD, playbooks=[TRIAGE, GATED])
    subprocess.run([*manage, "shell", "-c", seed], env=env, check=True)
    port = _free_port()
    log = var / "standalone.log"
    proc = subprocess.Popen(
        [*manage, "standalone", "--port", str(port), "--lab-port", "0", "--no-demo"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310 - our own server
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"standalone did not start:\n{log.read_text()}") from None
            time.sleep(0.3)
    yield Server(url, proc, log)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("BULWARK_BROWSER_ARTIFACTS", ROOT / "var" / "browser-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])  # fmt: skip
        yield browser
        browser.close()


@dataclass
class Session:
    """One user's browser tab: it logs every console error and saves screenshots."""

    page: Any
    server: Server
    artifacts: Path
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.server.url + path)
        assert response is not None
        assert response.status < 400, f"{path}: {response.status}"
        return response

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)

    def accessibility(self) -> list[str]:
        """axe-core's findings on the page as it is now (WCAG 2.1 A and AA rules and its
        best practices), whatever their impact. Evaluated through the DevTools protocol,
        which the page's CSP does not govern, so the page itself keeps refusing every
        inline script."""
        found = self.page.evaluate(
            AXE.read_text() + "\n;axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', "
            "'wcag21a', 'wcag21aa', 'best-practice']})"
            ".then(r => r.violations.map(v => v.impact + ' ' + v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ') + ')'))"
        )
        return list(found)

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.go("/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(self.server.url + "/")


@pytest.fixture
def tab(chromium: Any, server: Server, artifacts: Path) -> Iterator[Any]:
    """A fresh browser context per use; console errors fail the test."""
    sessions: list[Session] = []

    def open_tab() -> Session:
        context = chromium.new_context(viewport={"width": 1280, "height": 900},
                                       accept_downloads=True)  # fmt: skip
        page = context.new_page()
        session = Session(page, server, artifacts)
        page.on(
            "console",
            lambda msg: (
                msg.type == "error"
                and session.errors.append(f"{msg.text} ({msg.location.get('url', '')})")
            ),
        )
        page.on("pageerror", lambda exc: session.errors.append(str(exc)))
        sessions.append(session)
        return session

    yield open_tab
    for session in sessions:
        session.page.context.close()
    errors = [e for s in sessions for e in s.errors]
    assert errors == [], f"errors in the browser console: {errors}"
