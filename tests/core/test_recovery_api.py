"""Resume, re-run, bulk replay and the failure inbox through the API: each an audited action
of a named user, each refused with a reason where it does not apply."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from audit.models import AuditEvent
from core.dispatch import InlineDispatcher
from core.models import Run
from core.reconciler import sweep
from core.replay import request_replay
from core.runs import start_run
from tests.conftest import client_for
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)

# Fails its first attempt for good, succeeds on its second (a resume's).
FLAKY = {"id": "flaky", "action": "util.fail", "retry": {"attempts": 1},
         "with": {"message": "vendor down", "succeed_on_attempt": 2}}  # fmt: skip


def _failed_run(inline: InlineDispatcher, name: str = "flaky-playbook") -> Run:
    version = published_version(definition(echo("first"), {**FLAKY, "needs": ["first"]}, name=name))
    run = start_run(playbook=version.playbook, actor="alert:7")
    inline.drain()
    run.refresh_from_db()
    assert run.status == "failed"
    return run


def test_resume_reruns_the_failed_step_only_as_the_named_user(
    bob: User, inline_dispatch: InlineDispatcher
) -> None:
    run = _failed_run(inline_dispatch)
    response = client_for(bob).post(f"/api/v1/runs/{run.pk}/resume/")
    assert response.status_code == 200, response.json()
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    units = {u.step_id: u for u in run.units.all()}
    assert (units["first"].attempts, units["flaky"].attempts) == (1, 2)
    event = AuditEvent.objects.get(stream=f"run:{run.pk}", kind="run.resumed")
    assert event.actor == "user:bob"
    refused = client_for(bob).post(f"/api/v1/runs/{run.pk}/resume/")
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        "only a failed run or one that needs attention can resume; this run is succeeded"
    )


def test_rerun_starts_a_linked_run_on_the_active_version_with_the_same_inputs(
    bob: User, inline_dispatch: InlineDispatcher
) -> None:
    original = _failed_run(inline_dispatch)
    # A fix is published meanwhile: the re-run takes it.
    fixed = published_version(definition(echo("first"), echo("second", "first"),
                                         name="flaky-playbook"))  # fmt: skip
    response = client_for(bob).post(f"/api/v1/runs/{original.pk}/rerun/")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["rerun_of"], body["version"], body["inputs"]) == (
        original.pk, fixed.number, original.inputs)  # fmt: skip
    inline_dispatch.drain()
    assert Run.objects.get(pk=body["id"]).status == "succeeded"
    assert client_for(bob).get(f"/api/v1/runs/{original.pk}/").json()["reruns"] == [body["id"]]
    linked = AuditEvent.objects.get(stream=f"run:{original.pk}", kind="run.rerun")
    assert (linked.actor, linked.payload["run"]) == ("user:bob", body["id"])
    created = AuditEvent.objects.get(stream=f"run:{body['id']}", kind="run.created")
    assert created.payload["rerun_of"] == original.pk


def test_a_run_still_running_cannot_be_rerun(bob: User, inline_dispatch: InlineDispatcher) -> None:
    version = published_version(definition(echo("only")))
    run = start_run(playbook=version.playbook, actor="user:bob")
    response = client_for(bob).post(f"/api/v1/runs/{run.pk}/rerun/")
    assert response.status_code == 409
    assert "only a finished run can be re-run" in response.json()["error"]
    assert Run.objects.count() == 1


def test_only_analysts_resume_rerun_and_replay(
    dave: User, inline_dispatch: InlineDispatcher
) -> None:
    run = _failed_run(inline_dispatch)
    assert client_for(dave).post(f"/api/v1/runs/{run.pk}/resume/").status_code == 403
    assert client_for(dave).post(f"/api/v1/runs/{run.pk}/rerun/").status_code == 403
    window = {"since": timezone.now().isoformat(), "until": timezone.now().isoformat()}
    answer = client_for(dave).post(
        "/api/v1/playbooks/flaky-playbook/replay/", window, format="json"
    )
    assert answer.status_code == 403


def test_a_replay_starts_its_runs_at_the_rate_asked(
    bob: User, inline_dispatch: InlineDispatcher, settings: Any, time_machine: Any
) -> None:
    settings.BULWARK_REPLAY_RUNS_PER_SECOND = 2.0
    time_machine.move_to(timezone.now(), tick=False)
    since = timezone.now() - timedelta(minutes=1)
    failed = [_failed_run(inline_dispatch) for _ in range(6)]
    window = {
        "since": since.isoformat(),
        "until": (timezone.now() + timedelta(seconds=1)).isoformat(),
    }
    answer = client_for(bob).post("/api/v1/playbooks/flaky-playbook/replay/", window, format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert [r["original"] for r in body["runs"]] == [r.pk for r in failed]
    assert body["rate_per_second"] == 2.0
    started = []
    for _ in range(4):  # at 0 s, 1 s, 2 s and 3 s since it was asked for
        sweep()
        started.append(Run.objects.filter(rerun_of__isnull=False).count())
        time_machine.shift(timedelta(seconds=1))
    assert started == [1, 3, 5, 6]
    progress = client_for(bob).get(f"/api/v1/replays/{body['id']}/").json()
    assert all(r["run"] is not None for r in progress["runs"])
    assert progress["finished_at"] is not None
    event = AuditEvent.objects.get(kind="playbook.replay_requested")
    assert (event.actor, event.payload["runs"]) == ("user:bob", [r.pk for r in failed])


def test_a_replay_window_must_be_a_window(bob: User, inline_dispatch: InlineDispatcher) -> None:
    _failed_run(inline_dispatch)
    now = timezone.now().isoformat()
    answer = client_for(bob).post("/api/v1/playbooks/flaky-playbook/replay/",
                                  {"since": now, "until": now}, format="json")  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"path": "until", "message": "must be after since"}]
    missing = client_for(bob).post("/api/v1/playbooks/nope/replay/", {"since": now, "until": now},
                                   format="json")  # fmt: skip
    assert missing.status_code == 404


def test_the_failure_inbox_lists_failed_runs_across_playbooks_with_their_first_error(
    dave: User, inline_dispatch: InlineDispatcher
) -> None:
    first = _failed_run(inline_dispatch, "flaky-one")
    second = _failed_run(inline_dispatch, "flaky-two")
    fine = published_version(definition(echo("ok"), name="fine"))
    start_run(playbook=fine.playbook, actor="user:bob")
    inline_dispatch.drain()

    listed = client_for(dave).get("/api/v1/failures/").json()["results"]

    assert [r["id"] for r in listed] == [second.pk, first.pk]
    assert listed[0]["playbook"] == "flaky-two"
    assert listed[0]["first_error"]["step"] == "flaky"
    assert listed[0]["first_error"]["message"] == "vendor down"
    assert listed[0]["reruns"] == []
    one = client_for(dave).get("/api/v1/failures/?playbook=flaky-one").json()["results"]
    assert [r["id"] for r in one] == [first.pk]


def test_a_run_is_re_run_once_whoever_asks(bob: User, inline_dispatch: InlineDispatcher) -> None:
    original = _failed_run(inline_dispatch)
    since = timezone.now() - timedelta(minutes=1)
    batch = request_replay(playbook=original.playbook, since=since,
                           until=timezone.now() + timedelta(seconds=1), actor="user:carol")  # fmt: skip
    first = client_for(bob).post(f"/api/v1/runs/{original.pk}/rerun/")  # a person, meanwhile
    assert first.status_code == 201
    again = client_for(bob).post(f"/api/v1/runs/{original.pk}/rerun/")
    assert again.status_code == 409
    assert again.json()["error"] == (
        f"run {original.pk} was re-run already, as run {first.json()['id']}; re-run that one instead"
    )
    resumed = client_for(bob).post(f"/api/v1/runs/{original.pk}/resume/")
    assert resumed.status_code == 409
    assert "was re-run already" in resumed.json()["error"]
    sweep()  # the replay's turn: it finds the re-run and does nothing
    assert Run.objects.filter(rerun_of=original).count() == 1
    item = batch.items.get()
    assert item.run is None
    assert item.error == f"run: re-run already as run {first.json()['id']}"
    refused = AuditEvent.objects.get(stream=f"run:{original.pk}", kind="run.rerun_refused")
    assert (refused.actor, refused.payload["replay"]) == ("user:carol", batch.pk)


def test_a_scheduler_back_from_a_stop_does_not_replay_in_a_burst(
    inline_dispatch: InlineDispatcher, settings: Any, time_machine: Any
) -> None:
    settings.BULWARK_REPLAY_RUNS_PER_SECOND = 2.0
    time_machine.move_to(timezone.now(), tick=False)
    since = timezone.now() - timedelta(minutes=1)
    for _ in range(15):
        _failed_run(inline_dispatch)
    until = timezone.now() + timedelta(seconds=1)
    request_replay(playbook=Run.objects.first().playbook, since=since, until=until,
                   actor="user:bob")  # fmt: skip
    sweep()
    assert Run.objects.filter(rerun_of__isnull=False).count() == 1
    time_machine.shift(timedelta(minutes=10))  # the scheduler was stopped
    sweep()
    assert Run.objects.filter(rerun_of__isnull=False).count() == 11  # five seconds' worth


def test_a_rerun_keeps_only_the_inputs_the_active_version_declares(
    bob: User, inline_dispatch: InlineDispatcher
) -> None:
    version = published_version(definition({**FLAKY}, name="with-inputs",
                                           inputs={"channel": {"type": "string", "default": "#soc"}}))  # fmt: skip
    run = start_run(playbook=version.playbook, actor="user:bob")
    inline_dispatch.drain()
    published_version(definition(echo("only"), name="with-inputs"))  # drops the input
    response = client_for(bob).post(f"/api/v1/runs/{run.pk}/rerun/")
    assert response.status_code == 201, response.json()
    assert response.json()["inputs"] == {}


def test_dry_runs_are_neither_failures_nor_replayed(
    dave: User, inline_dispatch: InlineDispatcher
) -> None:
    version = published_version(definition({**FLAKY}, name="rehearsed"))
    dry = start_run(playbook=version.playbook, actor="user:bob", dry_run=True)
    inline_dispatch.drain()
    dry.refresh_from_db()
    assert dry.status == "failed"  # util.fail is a read: it ran, and failed
    assert client_for(dave).get("/api/v1/failures/").json()["results"] == []
    batch = request_replay(playbook=version.playbook, since=timezone.now() - timedelta(minutes=1),
                           until=timezone.now() + timedelta(seconds=1), actor="user:bob")  # fmt: skip
    assert batch.items.count() == 0
