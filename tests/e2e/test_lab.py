"""The vendor integrations with real worker processes against the lab's simulators."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from accounts import roles
from core.approval_models import ApprovalRequest
from core.approvals.decide import decide
from core.models import Run, StepRun
from core.runs import start_run
from integrations.lab.connections import ensure_lab_connections
from integrations.lab.server import Lab
from playbooks.models import Playbook
from tests.core.factories import definition, published_version
from tests.e2e.conftest import Processes, wait_for

HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab().start()
    lab["crowdstrike"].transition_seconds = 0.3
    yield lab
    lab.stop()


def run_status(run: Run) -> str:
    run.refresh_from_db()
    return run.status


def finished(run: Run) -> bool:
    run.refresh_from_db()
    return run.finished_at is not None


def test_the_contain_example_runs_to_success_on_real_workers(
    processes: Processes, lab: Lab, monkeypatch: Any
) -> None:
    # The worker processes keep artifacts where this process can read them back.
    monkeypatch.setenv("BULWARK_ARTIFACT_DIR", str(processes.logs / "artifacts"))
    processes.stop()
    processes.procs.clear()
    processes.start("worker", "worker", "--processes", "2", "--threads", "4")
    processes.start("scheduler", "scheduler")
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    call_command("import_playbooks", publish=True, verbosity=0)
    commander = User.objects.create_user("ic", email="ic@example.test")
    for name in (roles.APPROVER, "incident-commanders"):
        commander.groups.add(Group.objects.get_or_create(name=name)[0])
    run = start_run(playbook=Playbook.objects.get(name="contain-compromised-host"), inputs={"host_id": HOST},
                    actor="user:bob")  # fmt: skip
    parked = wait_for(
        lambda: run_status(run) == "waiting_approval", 30, "the run to wait at its gate"
    )
    # A worker announces the request: Slack buttons, a Teams card, a mail to the commander.
    wait_for(lambda: len(lab["slack"].messages) == 1 and len(lab.smtp.messages) == 1, 30,
             "the approval request to be announced")  # fmt: skip
    assert lab["slack"].messages[0]["channel"] == "C0IR"
    assert len(lab["teams"].cards) == 1
    assert len(lab["crowdstrike"].requests("POST", "/devices/entities/devices-actions/v2")) == 0
    (request,) = ApprovalRequest.objects.filter(run=run, status="pending")
    assert decide(request_id=request.pk, user=commander, approve=True).recorded
    took = wait_for(lambda: finished(run), 60, "the contain example to finish", interval=0.2)
    assert run.status == "succeeded", processes.log_text()
    print(f"\ncontain-compromised-host on real workers: parked at its gate in {parked:.1f}s, "
          f"finished {took:.1f}s after the approval")  # fmt: skip
    assert (
        len(lab["crowdstrike"].requests("POST", "/oauth2/token")) <= 2
    )  # one per worker process at most
    assert len(lab["crowdstrike"].requests("POST", "/devices/entities/devices-actions/v2")) == 1
    assert len(lab["slack"].messages) == 2  # the request, then the notice
    assert len(lab["jira"].issues) == 1


def test_more_waiting_steps_than_worker_threads_all_wait_at_once(
    processes: Processes, lab: Lab
) -> None:
    """Eight worker threads, twenty runs each waiting for a containment: they can all be
    waiting together only because waiting holds no thread."""
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    lab["crowdstrike"].offline.add(HOST)  # the host never confirms until it comes back
    step = {"id": "contain", "action": "crowdstrike.contain_host",
            "with": {"device_id": HOST, "poll_interval": 1}}  # fmt: skip
    version = published_version(definition(step, name="wait-many"))
    runs = [start_run(playbook=version.playbook, inputs={}, actor="user:bob") for _ in range(20)]
    waiting = StepRun.objects.filter(run__in=runs, status="waiting")
    wait_for(
        lambda: waiting.count() == 20, 30, "all twenty steps to be waiting at once", interval=0.1
    )
    lab["crowdstrike"].offline.discard(HOST)
    started = time.monotonic()
    wait_for(lambda: all(finished(r) for r in runs), 60, "every run to finish", interval=0.2)
    assert {r.status for r in runs} == {"succeeded"}, processes.log_text()
    print(f"\n20 waiting runs finished {time.monotonic() - started:.1f}s after the host came back")
    # Twenty runs decide on their own (a few may ask before any other has), but no run's
    # step asks twice, however many times it polled.
    keys = [
        c.headers["idempotency-key"]
        for c in lab["crowdstrike"].requests("POST", "/devices/entities/devices-actions/v2")
    ]
    assert len(keys) == len(set(keys))
