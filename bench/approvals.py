"""Approval benchmark: thousands of runs parked at approval gates, then all approved.

Each run does one step, stops at a gate, and does one more step once approved. The
baseline is the same runs without the gate, on the same workers in the same run. While
the runs wait, the worker processes are watched: their memory, threads and CPU time
must not grow with the number of waiting runs, as a waiting run holds no worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bulwark_bench \\
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/approvals.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.engine import fresh_services, publish, start, stop  # noqa: E402

GROUP = "bench-commanders"
CLIENTS = 4  # threads starting runs and deciding, each with its own connection


def playbook(gated: bool) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": "enrich", "action": "util.echo", "with": {"message": "x"}}
    ]
    if gated:
        steps.append({"id": "gate", "needs": ["enrich"], "approval": {"approvers": [GROUP]}})
    steps.append({"id": "act", "action": "util.echo", "needs": ["gate" if gated else "enrich"],
                  "with": {"message": "{{ inputs.n }}"}})  # fmt: skip
    name = "bench-gated" if gated else "bench-ungated"
    return {"name": name, "inputs": {"n": {"type": "integer", "required": True}}, "steps": steps}


def group_pids(leader: int) -> list[int]:
    """The processes of a worker's session (the supervisor and its dramatiq processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == leader:  # the process group id
                pids.append(int(entry.name))
    return pids


def usage(leader: int) -> dict[str, float]:
    """Resident memory (MiB), threads and CPU seconds of a worker's processes."""
    rss = threads = cpu = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in group_pids(leader):
        try:
            status = (Path(f"/proc/{pid}") / "status").read_text()
            fields = (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads += int(line.split()[1])
        cpu += (int(fields[11]) + int(fields[12])) / tick
    return {"rss_mib": rss, "threads": threads, "cpu_s": cpu}


def in_parallel(function: Any, items: list[Any]) -> None:
    from django.db import connection

    def call(chunk: list[Any]) -> None:
        try:
            for item in chunk:
                function(item)
        finally:
            connection.close()

    chunks = [items[i::CLIENTS] for i in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(call, chunks))


def wait_for(count_done: Any, total: int, timeout: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if count_done() >= total:
            return time.monotonic() - began
        time.sleep(0.25)
    raise SystemExit(f"only {count_done()} of {total} within {timeout:.0f}s")


def start_runs(name: str, count: int) -> list[int]:
    from core.runs import start_run
    from playbooks.models import Playbook

    target = Playbook.objects.get(name=name)
    ids: list[int] = []
    in_parallel(lambda n: ids.append(start_run(playbook=target, inputs={"n": n},
                                               actor="system:bench").pk), list(range(count)))  # fmt: skip
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    fresh_services("bench/approvals.py")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from accounts import roles
    from core.approval_models import ApprovalRequest
    from core.approvals.decide import decide
    from core.models import Run

    call_command("migrate", verbosity=0)
    approver = User.objects.create_user("bench-approver")
    for name in (roles.APPROVER, GROUP):
        approver.groups.add(Group.objects.get_or_create(name=name)[0])
    publish(playbook(gated=False))
    publish(playbook(gated=True))
    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    worker = start([sys.executable, "manage.py", "worker", "--processes", "2", "--threads", "8"],
                   env, logs / "approvals-worker.log")  # fmt: skip
    scheduler = start(
        [sys.executable, "manage.py", "scheduler"], env, logs / "approvals-scheduler.log"
    )
    n = args.runs
    try:
        time.sleep(4)
        start_runs("bench-ungated", 50)  # warm up
        wait_for(lambda: Run.objects.filter(status="succeeded").count(), 50, 120)
        idle = usage(worker.pid)

        began = time.monotonic()
        start_runs("bench-ungated", n)
        wait_for(lambda: Run.objects.filter(playbook__name="bench-ungated", status="succeeded").count(),
                 n + 50, 1800)  # fmt: skip
        baseline = time.monotonic() - began

        began = time.monotonic()
        start_runs("bench-gated", n)
        wait_for(lambda: Run.objects.filter(status="waiting_approval").count(), n, 1800)
        park = time.monotonic() - began
        parked = usage(worker.pid)
        time.sleep(10)
        after_wait = usage(worker.pid)

        pending = list(
            ApprovalRequest.objects.filter(status="pending").values_list("pk", flat=True)
        )
        began = time.monotonic()
        in_parallel(lambda pk: decide(request_id=pk, user=approver, approve=True), pending)
        approve = time.monotonic() - began
        wait_for(lambda: Run.objects.filter(playbook__name="bench-gated", status="succeeded").count(),
                 n, 1800)  # fmt: skip
        finish = time.monotonic() - began
        done = usage(worker.pid)
    finally:
        stop(worker)
        stop(scheduler)

    print(f"approval benchmark: {n} runs, 2 worker processes x 8 threads, PostgreSQL + Redis")
    print(
        f"baseline, {n} runs without a gate (2 steps each):   {baseline:7.1f} s = {n / baseline:6.0f} runs/s"
    )
    print(f"gated: time to park {n} runs at their gate:        {park:7.1f} s = {n / park:6.0f} runs/s "
          f"(ratio to the baseline {park / baseline:.2f})")  # fmt: skip
    print(f"gated: {len(pending)} approvals recorded in             {approve:7.1f} s = "
          f"{len(pending) / approve:6.0f} decisions/s ({CLIENTS} clients)")  # fmt: skip
    print(f"gated: from the first approval until all finished:  {finish:7.1f} s")
    print(f"while {n} runs waited, 10 s: worker CPU {after_wait['cpu_s'] - parked['cpu_s']:.2f} s")
    for label, seen in (("idle, before", idle), ("with all parked", parked),
                        ("after waiting 10 s", after_wait), ("after all finished", done)):  # fmt: skip
        print(
            f"worker processes {label:<20} RSS {seen['rss_mib']:7.1f} MiB, threads {seen['threads']:.0f}"
        )
    print(
        f"worker memory, parked / idle: {parked['rss_mib'] / idle['rss_mib']:.2f}; "
        f"threads parked / idle: {parked['threads'] / idle['threads']:.2f}"
    )


if __name__ == "__main__":
    main()
