"""The UI's pages: who sees what, what each shows, the actions they take, the security
headers they carry, and that lists cost the same number of queries whatever their length."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, TestCase
from django.utils import timezone

from alerts.models import Alert, AlertRun, AlertSource
from audit.models import LegalHold
from core.dispatch import InlineDispatcher
from core.models import Run
from core.runs import start_run
from playbooks.models import Playbook, PlaybookVersion
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db


def browser(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def playbook(db: None) -> PlaybookVersion:
    inputs = {"host": {"type": "string", "required": True, "description": "the host"},
              "count": {"type": "integer", "default": 2}}  # fmt: skip
    return published_version(definition(echo("a"), echo("b", "a"), name="ui-playbook",
                                        inputs=inputs, title="UI playbook"))  # fmt: skip


def make_runs(version: PlaybookVersion, n: int, inline: InlineDispatcher) -> list[Run]:
    """n finished runs (each step's message is sent on commit, which a test fakes)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        runs = [start_run(playbook=version.playbook, inputs={"host": f"h{i}"}, actor="user:bob")
                for i in range(n)]  # fmt: skip
    while inline.drain():
        pass
    for run in runs:
        run.refresh_from_db()
        assert run.status == "succeeded", run.status
    return runs


def finished_dry_run(version: PlaybookVersion, inline: InlineDispatcher) -> Run:
    """A dry run of `version`, driven to its end."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        dry = start_run(playbook=version.playbook, inputs={"host": "h"}, actor="user:bob",
                        dry_run=True)  # fmt: skip
    while inline.drain():
        pass
    return dry


PAGES = ["/", "/alerts/", "/runs/", "/runs/new/", "/playbooks/", "/playbooks/ui-playbook/",
         "/playbooks/ui-playbook/v1/", "/integrations/", "/approvals/"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(path: str, playbook: PlaybookVersion) -> None:
    response = browser(None).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", [*PAGES, "/audit/"])
def test_pages_carry_a_strict_csp_and_no_inline_code(
    path: str, playbook: PlaybookVersion, admin_user: User
) -> None:
    response = browser(admin_user).get(path)
    assert response.status_code == 200, path
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    html = response.content.decode()
    scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
    assert scripts == [], f"inline scripts on {path}: {scripts}"
    assert not re.search(r"\sstyle=", html), f"inline style on {path}"
    assert not re.search(r"\son[a-z]+=", html), f"inline handler on {path}"
    assert 'href="#main"' in html  # the skip link


def test_an_account_without_a_role_sees_nothing(db: None) -> None:
    nobody = User.objects.create_user("nobody")
    response = browser(nobody).get("/runs/")
    assert response.status_code == 403
    assert b"holds no role" in response.content


def test_the_dashboard_counts_what_is_open_and_charts_alerts(
    playbook: PlaybookVersion, bob: User, inline_dispatch: InlineDispatcher
) -> None:
    make_runs(playbook, 2, inline_dispatch)
    waiting = start_run(playbook=playbook.playbook, inputs={"host": "x"}, actor="user:bob")
    source = AlertSource.objects.create(slug="edr", auth="none")
    now = timezone.now()
    alert = Alert.objects.create(source=source, fingerprint="f", title="Bad thing", severity="high",
                                 raw={}, first_seen_at=now, last_seen_at=now)  # fmt: skip
    AlertRun.objects.create(alert=alert, run=waiting, trigger_index=0)
    page = browser(bob).get("/").content.decode()
    assert re.search(r'id="open-h">Open runs</h2><p class="figure">1<', page)
    assert "Alerts per hour, last 24 hours (1)" in page
    assert f'href="/runs/{waiting.pk}/"' in page


def test_starting_a_run_by_hand(playbook: PlaybookVersion, bob: User) -> None:
    client = browser(bob)
    form = client.get("/runs/new/?playbook=ui-playbook").content.decode()
    assert 'id="input-host"' in form
    assert "the host" in form
    response = client.post("/runs/new/", {"playbook": "ui-playbook", "input-host": "ws-9",
                                          "input-count": "5"})  # fmt: skip
    assert response.status_code == 302
    run = Run.objects.get()
    assert response["Location"] == f"/runs/{run.pk}/"
    assert run.inputs == {"host": "ws-9", "count": 5}
    assert run.actor == "user:bob"


def test_a_run_that_cannot_start_says_where(playbook: PlaybookVersion, bob: User) -> None:
    response = browser(bob).post("/runs/new/", {"playbook": "ui-playbook", "input-count": "[1"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "<code>inputs.count</code>: is not valid JSON" in page
    response = browser(bob).post("/runs/new/", {"playbook": "ui-playbook", "input-count": "3"})
    assert "<code>inputs.host</code>: is required" in response.content.decode()
    assert not Run.objects.exists()


def test_a_viewer_may_not_start_or_cancel(playbook: PlaybookVersion, dave: User) -> None:
    assert browser(dave).get("/runs/new/").status_code == 403
    run = start_run(playbook=playbook.playbook, inputs={"host": "x"}, actor="user:bob")
    assert browser(dave).post(f"/runs/{run.pk}/cancel/").status_code == 403
    run.refresh_from_db()
    assert run.status == "running"


def test_a_run_page_shows_graph_steps_timeline_and_actions(
    playbook: PlaybookVersion, bob: User, inline_dispatch: InlineDispatcher
) -> None:
    (run,) = make_runs(playbook, 1, inline_dispatch)
    page = browser(bob).get(f"/runs/{run.pk}/").content.decode()
    assert 'data-graph-name="run-graph" data-graph-json=' in page
    assert "run.succeeded" in page
    assert "step.succeeded" in page
    assert "Re-run on the current version" in page
    assert "Cancel the run" not in page  # finished
    assert "hx-trigger" not in page  # nothing to poll once finished
    graph = browser(bob).get(f"/runs/{run.pk}/graph.json").json()
    assert {n["id"]: n["status"] for n in graph["nodes"]} == {"a": "succeeded", "b": "succeeded"}
    assert graph["edges"] == [{"source": "a", "target": "b"}]
    assert graph["terminal"] is True


def test_an_open_run_polls_and_can_be_cancelled(playbook: PlaybookVersion, bob: User) -> None:
    run = start_run(playbook=playbook.playbook, inputs={"host": "x"}, actor="user:bob")
    client = browser(bob)
    live = client.get(f"/runs/{run.pk}/live/").content.decode()
    assert 'hx-trigger="every 2s"' in live
    graph = client.get(f"/runs/{run.pk}/graph.json").json()
    assert graph["terminal"] is False
    assert graph["nodes"][0]["status"] == "queued"
    response = client.post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status in ("cancelling", "cancelled")


def test_re_running_starts_a_new_run_with_the_same_inputs(
    playbook: PlaybookVersion, bob: User, inline_dispatch: InlineDispatcher
) -> None:
    (run,) = make_runs(playbook, 1, inline_dispatch)
    response = browser(bob).post(f"/runs/{run.pk}/rerun/")
    again = Run.objects.exclude(pk=run.pk).get()
    assert response["Location"] == f"/runs/{again.pk}/"
    assert again.inputs == run.inputs
    assert again.rerun_of_id == run.pk  # linked, as from the API


def test_re_running_a_dry_run_from_the_page_stays_dry(
    playbook: PlaybookVersion, bob: User, inline_dispatch: InlineDispatcher
) -> None:
    dry = finished_dry_run(playbook, inline_dispatch)
    with TestCase.captureOnCommitCallbacks(execute=True):
        browser(bob).post(f"/runs/{dry.pk}/rerun/")
    again = Run.objects.get(rerun_of=dry)
    assert again.dry_run is True


@pytest.mark.parametrize(("path", "many"), [("/runs/", 3), ("/alerts/", 3), ("/", 3)])
def test_lists_cost_the_same_queries_however_long(
    path: str, many: int, playbook: PlaybookVersion, bob: User,
    inline_dispatch: InlineDispatcher, django_assert_num_queries: Any,
) -> None:  # fmt: skip
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = browser(bob)
    source = AlertSource.objects.create(slug="edr", auth="none")

    def grow(n: int) -> None:
        now = timezone.now()
        for run in make_runs(playbook, n, inline_dispatch):
            alert = Alert.objects.create(source=source, fingerprint=str(run.pk), title="t",
                                         severity="high", raw={}, first_seen_at=now, last_seen_at=now)  # fmt: skip
            AlertRun.objects.create(alert=alert, run=run, trigger_index=0)

    def count() -> int:
        client.get(path)  # warm per-session caches
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        return len(queries)

    grow(2)
    few = count()
    grow(many * 5)
    assert count() == few, f"{path} issues more queries with more rows (N+1)"
    assert few <= 15


def test_a_run_page_costs_the_same_queries_however_many_steps(
    bob: User, inline_dispatch: InlineDispatcher
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(steps: int) -> int:
        name = f"wide-{steps}"
        version = published_version(definition(*[echo(f"s{i}") for i in range(steps)], name=name))
        with TestCase.captureOnCommitCallbacks(execute=True):
            run = start_run(playbook=version.playbook, actor="user:bob")
        while inline_dispatch.drain():
            pass
        client = browser(bob)
        client.get(f"/runs/{run.pk}/")
        with CaptureQueriesContext(connection) as captured:
            client.get(f"/runs/{run.pk}/")
        return len(captured)

    assert queries_for(2) == queries_for(12)


# Playbooks


def test_the_editor_validates_saves_a_draft_and_publishes(alice: User) -> None:
    client = browser(alice)
    check = client.post(
        "/playbooks/check/", {"definition": "name: x\nsteps: []\n"}
    ).content.decode()
    assert "problem" in check
    assert "<code>steps</code>" in check
    text = "name: fresh\nsteps:\n  - id: one\n    action: util.echo\n    with: {message: hi}\n"
    preview = client.post("/playbooks/check/", {"definition": text}).content.decode()
    assert "Valid" in preview
    assert 'data-graph-name="preview-graph" data-graph-json=' in preview
    bad = client.post("/playbooks/new/", {"definition": "name: fresh\nsteps: 3\n"})
    assert bad.status_code == 400
    assert not Playbook.objects.filter(name="fresh").exists()
    saved = client.post("/playbooks/new/", {"definition": text})
    assert saved["Location"] == "/playbooks/fresh/v1/"
    version = PlaybookVersion.objects.get(playbook__name="fresh")
    assert version.state == "draft"
    assert "Every check passes" in client.get("/playbooks/fresh/v1/").content.decode()
    published = client.post("/playbooks/fresh/v1/publish/")
    assert published["Location"] == "/playbooks/fresh/"
    version.refresh_from_db()
    assert version.state == "published"


def test_publishing_shows_the_guardrail(alice: User) -> None:
    from playbooks.versions import create_playbook

    text = ("name: risky\nsteps:\n  - id: contain\n    action: crowdstrike.contain_host\n"
            "    with: {device_id: abc}\n")  # fmt: skip
    create_playbook(definition=text, actor="user:alice")
    page = browser(alice).get("/playbooks/risky/v1/").content.decode()
    assert "Publish checks" in page
    assert 'class="problems"' in page
    browser(alice).post("/playbooks/risky/v1/publish/")
    assert PlaybookVersion.objects.get(playbook__name="risky").state == "draft"


def test_the_diff_shows_text_and_steps(alice: User, playbook: PlaybookVersion) -> None:
    published_version(definition(echo("a"), echo("c", "a"), name="ui-playbook"))
    page = browser(alice).get("/playbooks/ui-playbook/diff/").content.decode()
    assert "v1 → v2" in page
    assert "Added: c. Removed: b." in page
    assert "<del>" in page
    assert "<ins>" in page


def test_only_authors_edit(dave: User, playbook: PlaybookVersion) -> None:
    assert browser(dave).get("/playbooks/ui-playbook/edit/").status_code == 403
    assert browser(dave).post("/playbooks/ui-playbook/v1/publish/").status_code == 403


# Audit


def test_audit_review_filters_verifies_and_holds(
    carol: User, playbook: PlaybookVersion, inline_dispatch: InlineDispatcher
) -> None:
    (run,) = make_runs(playbook, 1, inline_dispatch)
    client = browser(carol)
    page = client.get(f"/audit/?run={run.pk}").content.decode()
    assert "run.created" in page
    assert f"run:{run.pk}#1" in page
    assert f"/api/v1/audit/export/?format=jsonl&amp;run={run.pk}" in page
    verified = client.post("/audit/verify/", {"run": str(run.pk)}, follow=True).content.decode()
    assert f"Verified run {run.pk}'s trail" in verified
    client.post("/audit/holds/", {"run": str(run.pk), "reason": "case 7"})
    assert LegalHold.objects.get().run_id == run.pk


def test_audit_review_is_for_auditors(bob: User) -> None:
    assert browser(bob).get("/audit/").status_code == 403


# Odd input, and what each role may see


def test_a_viewer_sees_the_graph_but_not_the_trail(
    playbook: PlaybookVersion, dave: User, inline_dispatch: InlineDispatcher
) -> None:
    (run,) = make_runs(playbook, 1, inline_dispatch)
    page = browser(dave).get(f"/runs/{run.pk}/").content.decode()
    assert 'data-graph-name="run-graph"' in page
    assert "run.created" not in page
    assert "analysts and auditors see it" in page
    assert "Download the evidence bundle" not in page


@pytest.mark.parametrize("query", ["?run=1.5", "?run=a%2Fb", "?before=%C2%B2", "?run=%C2%B2"])
def test_odd_audit_filters_are_refused_not_crashed_on(query: str, carol: User) -> None:
    response = browser(carol).get(f"/audit/{query}")
    assert response.status_code == 200
    if "run" in query:
        assert "must be a run&#x27;s number" in response.content.decode()


def test_an_odd_hold_request_says_what_is_wrong(carol: User) -> None:
    response = browser(carol).post("/audit/holds/", {"run": "²", "reason": "x"}, follow=True)
    assert "Name the run by its number." in response.content.decode()
    assert not LegalHold.objects.exists()


@pytest.mark.parametrize(("value", "message"), [("NaN", "NaN is not a JSON number"),
                                                ("1e999", "1e999 is too large")])  # fmt: skip
def test_inputs_that_are_not_json_numbers_are_refused(
    value: str, message: str, bob: User, db: None
) -> None:
    published_version(definition(echo("a"), name="nums", inputs={"n": {"type": "number"}}))
    response = browser(bob).post("/runs/new/", {"playbook": "nums", "input-n": value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Run.objects.exists()


def test_the_editor_draws_what_it_can_of_an_invalid_draft(alice: User) -> None:
    text = "name: odd\nsteps:\n  - id: a\n    needs: 5\n  - id: b\n    needs: ab\n"
    response = browser(alice).post("/playbooks/check/", {"definition": text})
    assert response.status_code == 200
    assert "problems</h2>" in response.content.decode()
    saved = browser(alice).post("/playbooks/new/", {"definition": text})
    assert saved.status_code == 400


def test_comparing_from_the_first_version(alice: User, playbook: PlaybookVersion) -> None:
    published_version(definition(echo("a"), name="ui-playbook"))
    assert browser(alice).get("/playbooks/ui-playbook/diff/?to=1").status_code == 200
    assert browser(alice).get("/playbooks/ui-playbook/diff/?to=x&from=y").status_code == 200


@pytest.mark.parametrize("name", ["new", "check"])
def test_the_uis_route_names_are_not_playbook_names(name: str, db: None) -> None:
    from playbooks.versions import DefinitionInvalid, create_playbook

    with pytest.raises(DefinitionInvalid, match="reserved name"):
        create_playbook(definition={"name": name, "steps": [echo("a")]}, actor="user:alice")


def test_a_wide_for_each_is_summed_up_not_listed(
    bob: User, inline_dispatch: InlineDispatcher
) -> None:
    wide = {**echo("fan"), "for_each": list(range(40)), "with": {"message": "{{ item }}"}}
    version = published_version(definition(wide, name="wide"))
    with TestCase.captureOnCommitCallbacks(execute=True):
        run = start_run(playbook=version.playbook, actor="user:bob")
    while inline_dispatch.drain():
        pass
    live = browser(bob).get(f"/runs/{run.pk}/live/").content.decode()
    assert "more items" in live
    assert live.count('<tr id="unit-') <= 26


def test_an_expired_session_sends_an_htmx_poll_to_the_login(
    playbook: PlaybookVersion, db: None
) -> None:
    run = start_run(playbook=playbook.playbook, inputs={"host": "x"}, actor="user:bob")
    response = Client().get(f"/runs/{run.pk}/live/", HTTP_HX_REQUEST="true",
                            HTTP_HX_CURRENT_URL=f"http://testserver/runs/{run.pk}/")  # fmt: skip
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/login/?next=")


def test_the_playbooks_and_audit_pages_cost_the_same_queries_however_long(
    carol: User, alice: User, inline_dispatch: InlineDispatcher
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(user: User, path: str) -> int:
        client = browser(user)
        client.get(path)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    def grow(n: int, start: int) -> None:
        for i in range(start, start + n):
            inputs = {"host": {"type": "string"}}
            version = published_version(definition(echo("a"), name=f"pb-{i}", inputs=inputs))
            make_runs(version, 1, inline_dispatch)

    grow(2, 0)
    few = (count(alice, "/playbooks/"), count(carol, "/audit/"), count(carol, "/runs/"))
    grow(8, 2)
    assert (count(alice, "/playbooks/"), count(carol, "/audit/"), count(carol, "/runs/")) == few


def test_a_long_timeline_points_each_role_to_where_the_rest_is(
    playbook: PlaybookVersion, bob: User, carol: User, inline_dispatch: InlineDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from web.views import runs

    monkeypatch.setattr(runs, "TIMELINE_LIMIT", 3)
    (run,) = make_runs(playbook, 1, inline_dispatch)
    analyst = browser(bob).get(f"/runs/{run.pk}/").content.decode()
    assert "The last 3 of" in analyst
    assert f"/audit/?run={run.pk}" not in analyst  # that page is the auditors'
    auditor = browser(carol).get(f"/runs/{run.pk}/").content.decode()
    assert f'href="/audit/?run={run.pk}"' in auditor


def test_an_unticked_checkbox_is_false_even_for_a_required_input(bob: User, db: None) -> None:
    inputs = {"force": {"type": "boolean", "required": True}, "dry": {"type": "boolean"}}
    published_version(definition(echo("a"), name="flags", inputs=inputs))
    response = browser(bob).post("/runs/new/", {"playbook": "flags", "input-dry": "on"})
    assert response.status_code == 302, response.content.decode()
    assert Run.objects.get().inputs == {"force": False, "dry": True}


def test_a_dry_runs_page_says_so_and_shows_its_plan(
    playbook: PlaybookVersion, bob: User, inline_dispatch: InlineDispatcher
) -> None:
    dry = finished_dry_run(playbook, inline_dispatch)
    page = browser(bob).get(f"/runs/{dry.pk}/").content.decode()
    assert '<span class="badge" id="dry-run">dry run</span>' in page
    assert "no write or destructive action reached a vendor" in page


def test_resuming_from_the_page_runs_the_failed_steps_again(
    bob: User, inline_dispatch: InlineDispatcher
) -> None:
    from core.runs import start_run

    version = published_version(definition(
        {"id": "flaky", "action": "util.fail", "retry": {"attempts": 1},
         "with": {"succeed_on_attempt": 2}}, name="page-flaky"))  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=True):
        run = start_run(playbook=version.playbook, actor="user:bob")
    while inline_dispatch.drain():
        pass
    page = browser(bob).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="action-resume"' in page
    with TestCase.captureOnCommitCallbacks(execute=True):
        browser(bob).post(f"/runs/{run.pk}/resume/")
    while inline_dispatch.drain():
        pass
    run.refresh_from_db()
    assert run.status == "succeeded"
