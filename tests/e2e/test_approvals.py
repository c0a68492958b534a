"""Runs parked at approval gates with real worker processes: waiting holds no worker."""

from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth.models import Group, User

from accounts import roles
from core.approval_models import ApprovalRequest
from core.approvals.decide import decide_many
from core.models import Run, StepRun
from core.runs import start_run
from tests.core.factories import definition, echo, published_version
from tests.e2e.conftest import Processes, wait_for

RUNS = 300


def worker_cpu_seconds(processes: Processes) -> float:
    """CPU time of the worker supervisor's whole process group so far."""
    leader = processes.procs["worker"].pid
    tick, total = 1 / 100, 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == leader:
            total += (int(fields[11]) + int(fields[12])) * tick
    return total


def test_hundreds_of_runs_wait_at_gates_without_a_worker_then_all_finish(
    processes: Processes,
) -> None:
    approver = User.objects.create_user("ic")
    for name in (roles.APPROVER, "ic"):
        approver.groups.add(Group.objects.get_or_create(name=name)[0])
    gate = {"id": "gate", "needs": ["enrich"], "approval": {"approvers": ["ic"]}}
    version = published_version(
        definition(echo("enrich"), gate, echo("act", "gate"), name="parked")
    )
    runs = [
        start_run(playbook=version.playbook, inputs={}, actor="system:test") for _ in range(RUNS)
    ]
    parked = Run.objects.filter(pk__in=[r.pk for r in runs], status="waiting_approval")
    wait_for(lambda: parked.count() == RUNS, 60, f"all {RUNS} runs to wait at their gates")
    # Nothing is running or queued for them: every worker thread is free.
    assert not StepRun.objects.filter(run__in=runs, status__in=["queued", "running"]).exists()
    before = worker_cpu_seconds(processes)
    time.sleep(3)
    assert worker_cpu_seconds(processes) - before < 1.0  # idle while they wait
    pending = list(ApprovalRequest.objects.filter(status="pending").values_list("pk", flat=True))
    assert len(pending) == RUNS
    began = time.monotonic()
    outcomes = decide_many(request_ids=pending, user=approver, approve=True, comment="storm over")
    decided = time.monotonic() - began
    assert set(outcomes.values()) == {"recorded"}
    done = Run.objects.filter(pk__in=[r.pk for r in runs], status="succeeded")
    wait_for(lambda: done.count() == RUNS, 120, "every approved run to finish")
    print(f"\n{RUNS} runs parked at gates: decided in {decided:.1f}s, all finished "
          f"{time.monotonic() - began:.1f}s after the first decision")  # fmt: skip
