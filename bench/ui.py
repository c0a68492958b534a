"""UI benchmark: every list and detail page against a large installation.

Seeds 100,000 runs (two steps each), 20,000 alerts linked to runs, and 1,000,000 audit
events over the runs' streams, on PostgreSQL; then asks each page (as a logged-in admin,
through Django's test client, so the time is the server's: middleware, queries,
templates) several times and prints the median time and the query count of each, with
the aim of 300 ms, and as a ratio to the same request for Django's own login page (a
template and a session, no query of ours), measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bulwark_bench \\
    .venv/bin/python bench/ui.py [--runs 100000] [--events 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
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

AIM_MS = 300.0
# Runs' statuses in turn: most succeeded, some failed, open or cancelled.
STATUSES = ["succeeded", "succeeded", "succeeded", "failed", "running", "waiting_approval",
            "cancelled"]  # fmt: skip
DEFINITION = {
    "name": "bench-ui",
    "title": "Bench",
    "steps": [
        {"id": "look", "action": "util.echo", "with": {"message": "x"}},
        {"id": "note", "needs": ["look"], "action": "util.echo", "with": {"message": "y"}},
    ],
}


def seed(runs: int, events: int, alerts: int) -> dict[str, int]:
    """The rows, written by SQL in bulk; returns ids the pages are asked about."""
    from django.db import connection

    from alerts.models import AlertSource
    from playbooks.versions import create_playbook, create_version, publish_version

    version = create_playbook(definition=DEFINITION, actor="bench")
    publish_version(version=version, actor="bench")
    changed = {**DEFINITION, "steps": [*DEFINITION["steps"],
               {"id": "tell", "needs": ["note"], "action": "util.echo", "with": {"message": "z"}}]}  # fmt: skip
    create_version(playbook=version.playbook, definition=changed, actor="bench")
    source = AlertSource.objects.create(slug="bench-edr", auth="none")
    per_run = max(1, events // runs)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("""
            INSERT INTO core_run (playbook_id, version_id, status, inputs, context, actor,
                                  created_at, finished_at, updated_at)
            SELECT %s, %s, (%s::text[])[1 + g %% 7], '{"host": "h"}', '{}', 'user:bench',
                   now() - (g || ' seconds')::interval * 6, now() - (g || ' seconds')::interval * 6,
                   now()
            FROM generate_series(1, %s) g""", [version.playbook_id, version.pk, STATUSES, runs])  # fmt: skip
        cursor.execute("""
            INSERT INTO core_steprun (run_id, step_id, item_index, phase, status, attempts,
                max_attempts, attempt_group, dispatch_token, requests_made, lease_owner, output)
            SELECT r.id, s.step, -1, 'main', CASE WHEN r.status = 'running' THEN 'running'
                   ELSE 'succeeded' END, 1, 1, 1, 0, 0, '', '{"message": "ok"}'
            FROM core_run r CROSS JOIN (VALUES ('look'), ('note')) s(step)""")
        cursor.execute("""
            INSERT INTO alerts_alert (source_id, fingerprint, external_id, title, severity,
                status, entities, raw, first_seen_at, last_seen_at, trigger_errors, count)
            SELECT %s, md5(g::text), '', 'Suspicious process ' || g,
                   (ARRAY['critical','high','medium','low'])[1 + g %% 4], 'firing', '{}',
                   '{"detect": true}', now() - (g || ' seconds')::interval * 30,
                   now() - (g || ' seconds')::interval * 30, '[]', 1
            FROM generate_series(1, %s) g""", [source.pk, alerts])  # fmt: skip
        cursor.execute("""
            INSERT INTO alerts_alertrun (alert_id, run_id, trigger_index)
            SELECT a.id, r.id, 0 FROM
              (SELECT id, row_number() OVER (ORDER BY id) n FROM alerts_alert) a
              JOIN (SELECT id, row_number() OVER (ORDER BY id) n FROM core_run) r USING (n)""")
        cursor.execute("""
            INSERT INTO audit_auditevent (stream, seq, created_at, actor, kind, run_id, step_id,
                playbook, payload, prev_hash, hash)
            SELECT 'run:' || r.id, e, r.created_at + (e || ' milliseconds')::interval,
                   'worker:bench', (ARRAY['run.created','step.queued','attempt.succeeded',
                   'step.succeeded','run.succeeded'])[1 + e %% 5], r.id,
                   CASE WHEN e %% 2 = 0 THEN 'look' END, 'bench-ui', '{"unit": "look"}',
                   md5(r.id || ':' || (e - 1)) || md5('x'), md5(r.id || ':' || e) || md5('x')
            FROM core_run r CROSS JOIN generate_series(1, %s) e""", [per_run])  # fmt: skip
        cursor.execute("""
            INSERT INTO audit_auditstreamhead (stream, seq, hash, changed)
            SELECT stream, max(seq), max(hash), 0 FROM audit_auditevent GROUP BY stream
            ON CONFLICT (stream) DO NOTHING""")
        cursor.execute("ANALYZE")
        cursor.execute("SELECT min(id), max(id) FROM core_run")
        first_run, last_run = cursor.fetchone()
        cursor.execute("SELECT max(id) FROM alerts_alert")
        (last_alert,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        (total_events,) = cursor.fetchone()
    return {"run": last_run, "old_run": first_run, "alert": last_alert, "events": total_events}


def measure(client: Any, path: str, repeat: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # warm: templates compiled, connection open
    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"bench: {path} answered {response.status_code}")
        queries = len(captured)
    return statistics.median(times), queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("bench/ui.py needs DATABASE_URL (PostgreSQL)")
    prepare_database(url)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import transaction
    from django.test import Client

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with transaction.atomic():
        ids = seed(args.runs, args.events, args.alerts)
    print(f"seeded {args.runs:,} runs, {args.alerts:,} alerts and {ids['events']:,} audit "
          f"events in {time.perf_counter() - started:.1f} s")  # fmt: skip
    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    admin = User.objects.create_superuser("bench-admin", "bench@example.org", "x")
    client = Client()
    client.force_login(admin)
    baseline, _ = measure(Client(), "/login/", args.repeat)
    run, alert = ids["run"], ids["alert"]
    pages = [
        "/", "/alerts/", f"/alerts/{alert}/", "/runs/", "/runs/?status=failed",
        "/runs/?page=1000", f"/runs/{run}/", f"/runs/{ids['old_run']}/", f"/runs/{run}/live/",
        f"/runs/{run}/graph.json", "/runs/new/?playbook=bench-ui", "/approvals/", "/playbooks/",
        "/playbooks/bench-ui/", "/playbooks/bench-ui/v1/", "/playbooks/bench-ui/diff/",
        "/playbooks/bench-ui/edit/", "/integrations/", "/audit/", f"/audit/?run={run}",
        f"/audit/?stream=run:{ids['old_run']}", "/audit/?kind=run.created",
        "/audit/?actor=worker:bench", "/audit/?kind=audit.pruned", "/runs/?status=needs_attention",
        f"/audit/?before={ids['events'] // 2}",
    ]  # fmt: skip
    print(f"baseline: Django's login page {baseline:.1f} ms")
    print(f"{'page':<42} {'ms':>8} {'queries':>8} {'x login':>8}")
    slow = []
    for path in pages:
        ms, queries = measure(client, path, args.repeat)
        print(f"{path:<42} {ms:8.1f} {queries:8d} {ms / baseline:8.1f}")
        if ms > AIM_MS:
            slow.append(path)
    print(f"aim: every page under {AIM_MS:.0f} ms of server time: "
          + ("all are" if not slow else f"over it: {', '.join(slow)}"))  # fmt: skip


if __name__ == "__main__":
    main()
