"""Alert-intake benchmark: accepted alerts/s and latency under concurrent load from a
separate process, against `manage.py serve` (gunicorn) on PostgreSQL, beside a minimal
Django view that inserts one row, measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bulwark_bench \\
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/intake.py [--seconds 10]

Targets (issue 4): intake at least 70 % of the minimal view's throughput, p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
SECRET = "bench-intake-secret-0123456789"  # noqa: S105 - the benchmark's own


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_up(port: int) -> None:
    import httpx

    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the server did not come up")


def load(url: str, concurrency: int, seconds: float, token: str = "") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "intake_load.py"), url, str(concurrency), str(seconds), token],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench/intake.py needs DATABASE_URL (PostgreSQL)")
    from bench.engine import prepare_database

    prepare_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    from alerts.sources import create_source
    from bench.minimal_view import ensure_table

    call_command("migrate", verbosity=0)
    ensure_table()
    from playbooks.versions import create_playbook, publish_version

    for slug in ("bench", "bench-runs"):
        create_source(
            slug=slug, format="generic", auth="bearer", secret=SECRET, actor="system:bench"
        )
    # Alerts of bench-runs each start a run (queued: no worker runs in this benchmark).
    draft = create_playbook(
        definition={"name": "bench-intake-runs", "triggers": [{"source": "bench-runs"}],
                    "steps": [{"id": "note", "action": "util.echo", "with": {"message": "x"}}]},
        actor="system:bench",
    )  # fmt: skip
    publish_version(version=draft, actor="system:bench")
    port = free_port()
    env = dict(os.environ, BULWARK_BENCH_VIEWS="1", BULWARK_LOG_LEVEL="WARNING")
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "2", "--threads", "4"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_up(port)
        base = f"http://127.0.0.1:{port}"
        load(f"{base}/bench/minimal/", args.concurrency, 2)  # warm up both paths
        load(f"{base}/api/v1/hooks/bench/", args.concurrency, 2, SECRET)
        minimal = load(f"{base}/bench/minimal/", args.concurrency, args.seconds)
        intake = load(f"{base}/api/v1/hooks/bench/", args.concurrency, args.seconds, SECRET)
        runs = load(f"{base}/api/v1/hooks/bench-runs/", args.concurrency, args.seconds, SECRET)
    finally:
        server.terminate()
        server.wait(timeout=20)
    ratio = intake["per_second"] / minimal["per_second"]
    print(f"alert intake benchmark: {args.concurrency} concurrent clients for {args.seconds:g}s each, "
          "gunicorn 2 workers x 4 threads, PostgreSQL")  # fmt: skip
    print(f"minimal view (insert one row): {minimal['per_second']:7.0f} req/s   p50 {minimal['p50_ms']:6.1f} ms   "
          f"p99 {minimal['p99_ms']:6.1f} ms   errors {minimal['errors']}")  # fmt: skip
    print(f"alert intake (new alerts):     {intake['per_second']:7.0f} alerts/s p50 {intake['p50_ms']:6.1f} ms   "
          f"p99 {intake['p99_ms']:6.1f} ms   errors {intake['errors']}")  # fmt: skip
    print(f"alert intake, each a run:      {runs['per_second']:7.0f} alerts/s p50 {runs['p50_ms']:6.1f} ms   "
          f"p99 {runs['p99_ms']:6.1f} ms   errors {runs['errors']}   (ratio {runs['per_second'] / minimal['per_second']:.2f})")  # fmt: skip
    print(f"ratio {ratio:.2f} (target >= 0.70), p99 {intake['p99_ms']:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
