"""What people do in the UI, in a real browser: log in, start a run and watch it finish,
approve as a second user, write and publish a version and read its diff, export a run's
audit, and visit every page (each saved as a screenshot) with no console errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import Session

Tab = Callable[[], Session]


def statuses(session: Session) -> dict[str, str]:
    raw = session.page.locator("[data-graph-name='run-graph']").get_attribute("data-statuses")
    return json.loads(raw or "{}")


def wait_for_graph(session: Session, wanted: dict[str, str], timeout: float = 30) -> None:
    session.page.wait_for_function(
        """([wanted]) => {
            const el = document.querySelector("[data-graph-name='run-graph']");
            if (!el || !el.dataset.statuses) return false;
            const now = JSON.parse(el.dataset.statuses);
            return Object.entries(wanted).every(([k, v]) => now[k] === v);
        }""",
        arg=[wanted],
        timeout=timeout * 1000,
    )


def start(session: Session, playbook: str, host: str) -> int:
    session.go(f"/runs/new/?playbook={playbook}")
    session.page.get_by_label(re.compile(r"^host")).fill(host)
    session.page.get_by_role("button", name="Start the run").click()
    session.page.wait_for_url(re.compile(r"/runs/\d+/$"))
    return int(session.page.url.rstrip("/").rsplit("/", 1)[1])


def test_logging_in(tab: Tab) -> None:
    session = tab()
    session.go("/runs/")
    assert "/login/" in session.page.url
    session.page.get_by_label("Username").fill("bob")
    session.page.get_by_label("Password").fill("wrong")
    session.page.get_by_role("button", name="Log in").click()
    assert session.page.get_by_role("alert").is_visible()
    session.shot("login-refused")
    session.login("bob")
    assert session.page.get_by_role("heading", name="Dashboard").is_visible()
    session.shot("dashboard")


def test_a_run_started_by_hand_turns_green(tab: Tab) -> None:
    session = tab()
    session.login("bob")
    run = start(session, "browser-triage", "ws-042")
    wait_for_graph(session, {"look": "succeeded", "note": "succeeded"})
    session.page.wait_for_selector("#run-status .status-succeeded")
    assert session.page.locator("canvas").count() > 0  # cytoscape drew it
    session.shot(f"run-{run}-succeeded")


def test_a_second_user_approves_the_gate(tab: Tab) -> None:
    starter = tab()
    starter.login("bob")
    run = start(starter, "browser-gated", "db-7")
    wait_for_graph(starter, {"check": "succeeded", "approve": "waiting_approval"})
    starter.shot(f"run-{run}-waiting")

    approver = tab()
    approver.login("erin")
    approver.go("/approvals/")
    approver.shot("approvals-inbox")
    approver.page.get_by_role("link", name=re.compile(r"^#\d+")).first.click()
    approver.page.get_by_label(re.compile("Comment")).fill("checked the host first")
    approver.shot("approval-request")
    approver.page.get_by_role("button", name="Approve").click()
    approver.page.wait_for_load_state()
    approver.shot("approval-decided")

    wait_for_graph(starter, {"approve": "succeeded", "act": "succeeded"})
    starter.page.wait_for_selector("#run-status .status-succeeded")
    starter.shot(f"run-{run}-approved")
    starter.page.reload()
    assert starter.page.get_by_text("erin: approved").is_visible()


def test_an_author_edits_validates_publishes_and_reads_the_diff(tab: Tab) -> None:
    session = tab()
    session.login("alice")
    session.go("/playbooks/browser-triage/")
    session.page.get_by_role("link", name="Write a new version").click()
    editor = session.page.get_by_role("textbox", name="Definition")
    editor.fill("name: browser-triage\nsteps: 5\n")
    session.page.wait_for_selector("#check.refused")
    assert session.page.locator("#check .problems li").count() > 0
    session.shot("editor-invalid")
    valid = (
        "name: browser-triage\ntitle: Triage a host\ninputs:\n"
        "  host: {type: string, required: true}\nsteps:\n"
        "  - id: look\n    action: util.echo\n    with: {message: look}\n"
        "  - id: note\n    needs: [look]\n    action: util.echo\n    with: {message: noted}\n"
        "  - id: tell\n    title: Tell the team\n    needs: [note]\n    action: util.echo\n"
        "    with: {message: told}\n"
    )
    editor.fill(valid)
    session.page.wait_for_selector("#check.done")
    session.page.wait_for_selector("#check [data-graph-name='preview-graph'] canvas")
    session.shot("editor-valid")
    session.page.get_by_role("button", name="Save as a draft").click()
    session.page.wait_for_url(re.compile(r"/playbooks/browser-triage/v2/$"))
    assert session.page.get_by_text("Every check passes").is_visible()
    session.shot("version-draft")
    session.page.get_by_role("button", name="Publish").click()
    session.page.wait_for_url(re.compile(r"/playbooks/browser-triage/$"))
    assert session.page.get_by_text("v2 of browser-triage is published").is_visible()
    session.shot("playbook-published")
    session.page.get_by_role("link", name="Compare versions").click()
    summary = session.page.locator("#diff-summary").inner_text()
    assert "Added: tell." in summary
    assert session.page.locator("ins").filter(has_text="id: tell").count() == 1
    session.shot("playbook-diff")


def test_an_auditor_exports_a_runs_audit(tab: Tab) -> None:
    analyst = tab()
    analyst.login("bob")
    run = start(analyst, "browser-triage", "ws-100")
    wait_for_graph(analyst, {"note": "succeeded"})

    auditor = tab()
    auditor.login("carol")
    auditor.go(f"/audit/?run={run}")
    assert auditor.page.get_by_text("run.created").first.is_visible()
    auditor.shot("audit-review")
    with auditor.page.expect_download() as download:
        auditor.page.get_by_role("link", name="Export JSON Lines").click()
    lines = [json.loads(line) for line in open(download.value.path()).read().splitlines()]  # noqa: SIM115
    kinds = [event["kind"] for event in lines]
    assert kinds[0] == "run.created"
    assert "run.succeeded" in kinds
    assert {event["stream"] for event in lines} == {f"run:{run}"}
    auditor.page.get_by_role("button", name=f"Verify run {run}").click()
    auditor.page.wait_for_selector("#verify-result.done")
    auditor.shot("audit-verified")


def test_every_page_renders_without_errors(tab: Tab) -> None:
    session = tab()
    session.login("root")
    pages: dict[str, Any] = {
        "dashboard": "/", "alerts": "/alerts/", "runs": "/runs/", "run-start": "/runs/new/",
        "approvals": "/approvals/", "playbooks": "/playbooks/",
        "playbook": "/playbooks/browser-gated/", "version": "/playbooks/browser-gated/v1/",
        "editor": "/playbooks/browser-gated/edit/", "new-playbook": "/playbooks/new/",
        "integrations": "/integrations/", "audit": "/audit/", "admin": "/admin/",
        "api-docs": "/api/v1/docs/",
    }  # fmt: skip
    problems: dict[str, list[str]] = {}
    for name, path in pages.items():
        session.go(path)
        session.page.wait_for_load_state("networkidle")
        session.shot(f"page-{name}")
        if name not in ("admin", "api-docs"):  # Django's and Swagger's own pages
            found = session.accessibility()
            if found:
                problems[name] = found
    run = start(session, "browser-triage", "ws-7")
    wait_for_graph(session, {"note": "succeeded"})
    session.go(f"/runs/{run}/")
    session.page.wait_for_load_state("networkidle")
    session.shot("page-run")
    problems.update({"run": found} if (found := session.accessibility()) else {})
    assert problems == {}, f"accessibility (axe-core): {problems}"
    # Narrow screens: the navigation wraps, nothing overflows the viewport sideways.
    session.page.set_viewport_size({"width": 390, "height": 844})
    session.go("/runs/")
    width = session.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1
    session.shot("page-runs-narrow")
