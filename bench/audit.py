"""Audit benchmark: the cost of the audit trail on concurrent writers, and verify speed.

Append: 8 writer processes each commit step-like transactions (a row updated, a row
inserted) on their own runs; the same workload with each transaction also recording
its audit event is measured in the same run, alternately, and the ratio printed (the
aim: at least 0.8). Streams are per run, so writers never wait on one another's audit.

Verify: a trail of --events events over many streams is seeded, a digest signed, and
verify_trail (every hash, link, digest and signature) is timed (the aim: at least
100,000 events a second).

Prune: retention then prunes the whole trail (verifying each range, signing a tombstone
per stream), against a bare DELETE of a copy of the same rows, stream batch by batch.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bulwark_bench \\
    .venv/bin/python bench/audit.py [--writers 8] [--transactions 1500] [--events 300000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.engine import prepare_database  # noqa: E402

RUNS_PER_WRITER = 50
PARTS = ("engine", "rows", "verify", "prune")


def setup_django() -> None:
    import django

    django.setup()


def create_workload_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_work (id bigint PRIMARY KEY, n bigint, state text)"
        )
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_log (id bigserial PRIMARY KEY, work_id bigint, "
                       "at timestamptz, payload jsonb)")  # fmt: skip
        cursor.execute("TRUNCATE bench_work, bench_log")
        cursor.execute(
            "INSERT INTO bench_work SELECT g, 0, 'queued' FROM generate_series(1, 100000) g"
        )


def writer(index: int, transactions: int, audited: bool, ready: Any, go: Any, out: Any) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from audit.events import NewEvent, record_events

    connection.close()  # a connection of its own, not the parent's
    first_run = index * RUNS_PER_WRITER + 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    ready.set()
    go.wait()
    start = time.perf_counter()
    for n in range(transactions):
        run = first_run + n % RUNS_PER_WRITER
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE bench_work SET n = n + 1, state = %s WHERE id = %s", ["succeeded", run]
            )
            cursor.execute("INSERT INTO bench_log (work_id, at, payload) VALUES (%s, %s, %s)",
                           [run, timezone.now(), '{"step": "s", "output": {"message": "ok"}}'])  # fmt: skip
            if audited:
                record_events([NewEvent(stream=f"run:{run}", kind="step.succeeded", actor="worker:bench",
                                        run_id=run, step_id=f"s{n}",
                                        payload={"attempt": 1, "output": {"message": "ok"}})])  # fmt: skip
    out.put(time.perf_counter() - start)


def engine_writer(index: int, runs: int, audited: bool, ready: Any, go: Any, out: Any) -> None:
    """Runs of the 10-step playbook, one after another, through the engine itself (claim,
    execute, complete, advance), with the inline dispatcher: the transactions Bulwark
    commits for real steps. Without audit, the engine's one call that records its
    events does nothing; all else is the same."""
    from django.db import connection

    import core.transitions
    from core.dispatch import InlineDispatcher, set_dispatcher
    from core.runs import start_run
    from playbooks.models import Playbook

    connection.close()
    if not audited:
        setattr(core.transitions, "record_events", lambda events: [])  # noqa: B010 - the bench's switch
    dispatcher = InlineDispatcher()
    set_dispatcher(dispatcher)
    playbook = Playbook.objects.get(name=ENGINE_PLAYBOOK["name"])
    ready.set()
    go.wait()
    start = time.perf_counter()
    for _ in range(runs):
        start_run(playbook=playbook, actor=f"system:bench-{index}")
        dispatcher.drain()
    out.put(time.perf_counter() - start)


ENGINE_PLAYBOOK: dict[str, Any] = {
    "name": "bench-audit-sequential",
    "steps": [{"id": f"s{i}", "action": "util.echo", "with": {"message": i},
               **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(10)],
}  # fmt: skip


def append_phase(writers: int, transactions: int, audited: bool, target: Any = None) -> float:
    """Transactions (or, with engine_writer, runs) a second, all writers together, from
    the start signal to the last."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    go, out = context.Event(), context.Queue()
    readies = [context.Event() for _ in range(writers)]
    procs = [context.Process(target=target or writer,
                             args=(i, transactions, audited, readies[i], go, out))
             for i in range(writers)]  # fmt: skip
    for proc in procs:
        proc.start()
    for ready in readies:
        ready.wait(60)
    started = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    if any(proc.exitcode for proc in procs):
        raise SystemExit("bench: a writer failed")
    return writers * transactions / elapsed


def seed(events: int, per_stream: int = 100, batch: int = 500) -> None:
    from django.db import transaction

    from audit.events import NewEvent, record_events

    streams = max(1, events // per_stream)
    made = 0
    while made < events:
        chunk = []
        for _ in range(min(batch, events - made)):
            stream = 10_000_000 + made % streams
            chunk.append(NewEvent(stream=f"run:{stream}", kind="step.succeeded", actor="worker:bench",
                                  run_id=stream, step_id=f"s{made}",
                                  payload={"attempt": 1, "output": {"message": "ok", "n": made}}))  # fmt: skip
            made += 1
        with transaction.atomic():
            record_events(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--transactions", type=int, default=1500, help="per writer and phase")
    parser.add_argument("--runs", type=int, default=40, help="engine runs per writer and phase")
    parser.add_argument("--repeat", type=int, default=5, help="phases of each kind, alternating")
    parser.add_argument("--events", type=int, default=300_000, help="events to seed for verify")
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only this part (repeatable); default: all of them")  # fmt: skip
    args = parser.parse_args()
    parts = args.only or PARTS
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("bench/audit.py needs DATABASE_URL (PostgreSQL)")
    prepare_database(url)
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    create_workload_tables()

    from bench.engine import publish

    publish(ENGINE_PLAYBOOK)
    workloads = [
        ("engine", "engine: runs of 10 steps, each step's transactions as Bulwark commits them",
         engine_writer, args.runs, "runs/s"),
        ("rows", "rows: one row updated and one inserted a transaction (audit's worst case)",
         writer, args.transactions, "tx/s"),
    ]  # fmt: skip
    for part, label, target, amount, unit in workloads:
        if part not in parts:
            continue
        append_phase(args.writers, max(1, amount // 5), audited=True, target=target)  # warm up
        plain: list[float] = []
        audited: list[float] = []
        for _ in range(args.repeat):
            plain.append(append_phase(args.writers, amount, audited=False, target=target))
            audited.append(append_phase(args.writers, amount, audited=True, target=target))
        without, with_audit = statistics.median(plain), statistics.median(audited)
        print(f"append, {args.writers} writers, {label}:")
        print(f"  without audit {without:,.1f} {unit}, with audit {with_audit:,.1f} {unit}, "
              f"ratio {with_audit / without:.2f}")  # fmt: skip
        print(f"  phases without: {', '.join(f'{x:,.1f}' for x in plain)}; "
              f"with: {', '.join(f'{x:,.1f}' for x in audited)}")  # fmt: skip
        # Each audited phase against the plain one just before it: the machine's speed
        # drifts between phases (other tenants), less between neighbours.
        paired = [a / p for p, a in zip(plain, audited, strict=True)]
        print(f"  paired ratios: {', '.join(f'{x:.2f}' for x in paired)}; "
              f"median {statistics.median(paired):.2f}")  # fmt: skip

    if "verify" in parts:
        verify_phase(args.events)
    if "prune" in parts:
        prune_phase()


def verify_phase(events: int) -> None:
    """Seed a trail, sign a digest, and time verify_trail over it."""
    from audit.digests import make_digest
    from audit.models import AuditEvent
    from audit.verify import verify_trail

    started = time.perf_counter()
    seed(events)
    print(f"seeded {events:,} events in {time.perf_counter() - started:.1f} s")
    make_digest()
    total = AuditEvent.objects.count()
    times = []
    for _ in range(2):
        started = time.perf_counter()
        result = verify_trail()
        times.append(time.perf_counter() - started)
        if not result.ok:
            raise SystemExit(f"bench: the trail does not verify: {result.first_problem}")
    best = min(times)
    print(f"verify: {total:,} events in {result.streams_checked:,} streams and "
          f"{result.digests_checked} digests in {best:.2f} s: {total / best:,.0f} events/s (aim >= 100,000)")  # fmt: skip


def prune_phase() -> None:
    """Retention over the whole trail, against deleting the same rows by stream bare."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from audit.models import AuditEvent, AuditStreamHead
    from audit.retention import STREAMS_PER_BATCH, prune_audit

    streams = list(AuditStreamHead.objects.order_by("stream").values_list("stream", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_events")
        cursor.execute("CREATE TABLE bench_events AS SELECT * FROM audit_auditevent")
        cursor.execute("CREATE INDEX ON bench_events (stream, seq)")
        cursor.execute("ANALYZE bench_events")
    started = time.perf_counter()
    for start in range(0, len(streams), STREAMS_PER_BATCH):
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM bench_events WHERE stream = ANY(%s)",
                           [streams[start : start + STREAMS_PER_BATCH]])  # fmt: skip
    bare = time.perf_counter() - started
    total = AuditEvent.objects.count()
    started = time.perf_counter()
    result = prune_audit(timezone.now() + timedelta(seconds=1), keep_runs=lambda ids: set(),
                         reason="bench")  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.refused or result.events != total:
        raise SystemExit(
            f"bench: pruning left {total - result.events} events: {result.refused[:3]}"
        )
    print(f"prune: {result.events:,} events of {result.streams:,} streams in {elapsed:.2f} s "
          f"({result.events / elapsed:,.0f} events/s, each verified and tombstoned); a bare "
          f"DELETE of the same rows by stream {bare:.2f} s; ratio {bare / elapsed:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
