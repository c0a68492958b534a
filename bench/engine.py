"""Engine benchmark: Bulwark's run engine against raw dramatiq, same Redis, same machine.

Shapes: a 10-step sequential playbook and a 100-way fan-out/fan-in playbook of util.echo
steps, run by 2 Bulwark worker processes on PostgreSQL + Redis; the baseline is a
10-message dramatiq pipeline and a group of 100 plus a join, run by 2 dramatiq worker
processes. Prints medians and the ratios.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bulwark_bench \
    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/engine.py [--repeat 15]

BENCH_THREADS sets the Bulwark worker threads per process (default 8, as in production).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def prepare_database(url: str) -> None:
    """A fresh database for each benchmark run when it is a dedicated one (its name ends
    in `_bench`): rows and dead tuples left by earlier runs would otherwise slow later
    ones, above all where autovacuum is off. Any other database is only created if absent."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if name.endswith("_bench"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            print(f"bench: using the existing database {name}; its contents affect the figures")
            return
        conn.execute(f'CREATE DATABASE "{name}"')


def fresh_services(script: str) -> tuple[str, str]:
    """DATABASE_URL (PostgreSQL, made fresh) and REDIS_URL (flushed), or exit saying why."""
    db_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not db_url.startswith("postgres") or not redis_url:
        raise SystemExit(f"{script} needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    prepare_database(db_url)
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return db_url, redis_url


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def sequential(n: int) -> dict[str, Any]:
    steps = [{"id": f"s{i}", "action": "util.echo", "with": {"message": i}} for i in range(n)]
    for i in range(1, n):
        steps[i]["needs"] = [f"s{i - 1}"]
    return {"name": "bench-sequential", "steps": steps}


def fan_out(width: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"id": "root", "action": "util.echo", "with": {"message": "go"}}]
    steps += [
        {"id": f"b{i}", "action": "util.echo", "needs": ["root"], "with": {"message": i}}
        for i in range(width)
    ]
    steps.append({"id": "join", "action": "util.echo", "needs": [f"b{i}" for i in range(width)]})
    return {"name": "bench-fan-out", "steps": steps}


def publish(definition: dict[str, Any]) -> Any:
    from django.utils import timezone

    from playbooks.definition import content_hash
    from playbooks.models import Playbook, PlaybookVersion

    playbook, _ = Playbook.objects.get_or_create(name=definition["name"])
    digest = content_hash(definition)
    version = playbook.versions.filter(content_hash=digest).first()
    if version is None:
        playbook.versions.filter(state="published").update(state="retired")
        version = PlaybookVersion.objects.create(
            playbook=playbook,
            number=playbook.versions.count() + 1,
            definition=definition,
            content_hash=digest,
            state="published",
            published_at=timezone.now(),
        )
    return playbook


def time_run(playbook: Any, timeout: float = 60.0) -> float:
    """Seconds from start_run's call to the run's finish, as recorded in the database."""
    from core.models import Run
    from core.runs import start_run

    began = time.time()
    run = start_run(playbook=playbook, actor="system:bench")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, finished = Run.objects.filter(pk=run.pk).values_list("status", "finished_at").get()
        if finished is not None:
            if status != "succeeded":
                raise SystemExit(f"bench run {run.pk} ended {status}")
            return finished.timestamp() - began
        time.sleep(0.025)
    raise SystemExit(f"bench run {run.pk} did not finish within {timeout}s")


def measure(sequential_run: Any, fan_out_run: Any, repeat: int) -> dict[str, list[float]]:
    """Boot, warm up, then time both shapes alternately with the same pauses between runs
    (the pause matters: an idle consumer polls more slowly)."""
    time.sleep(3)  # let the workers boot
    for _ in range(3):  # warm up connections, caches and the consumers
        sequential_run()
        fan_out_run()
    results: dict[str, list[float]] = {"sequential": [], "fan_out": []}
    for _ in range(repeat):
        results["sequential"].append(sequential_run())
        time.sleep(0.2)
        results["fan_out"].append(fan_out_run())
        time.sleep(0.2)
    return results


def bench_bulwark(repeat: int, env: dict[str, str], logs: Path) -> dict[str, list[float]]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    worker = start(
        [
            sys.executable,
            "manage.py",
            "worker",
            "--processes",
            "2",
            "--threads",
            os.environ.get("BENCH_THREADS", "8"),
        ],
        env,
        logs / "worker.log",
    )
    scheduler = start([sys.executable, "manage.py", "scheduler"], env, logs / "scheduler.log")
    try:
        seq, fan = publish(sequential(10)), publish(fan_out(100))
        return measure(lambda: time_run(seq), lambda: time_run(fan), repeat)
    finally:
        stop(worker)
        stop(scheduler)


def bench_raw(repeat: int, redis_url: str, logs: Path) -> dict[str, list[float]]:
    import redis

    env = dict(os.environ, BENCH_REDIS_URL=redis_url, PYTHONPATH=str(ROOT))
    worker = start(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "bench.raw_dramatiq_actors",
            "--processes",
            "2",
            "--threads",
            "8",
            "--queues",
            "raw",
        ],
        env,
        logs / "raw-dramatiq.log",
    )
    os.environ["BENCH_REDIS_URL"] = redis_url
    from bench import raw_dramatiq_actors as raw

    client = redis.Redis.from_url(redis_url)

    def timed(send: Any) -> float:
        run = uuid.uuid4().hex
        began = time.time()
        send(run)
        client.blpop([f"bench-raw:done:{run}"], timeout=60)
        return time.time() - began

    def pipeline(run: str) -> None:
        raw.hop.send(run, 10)

    def group(run: str) -> None:
        for _ in range(100):
            raw.member.send(run, 100)

    try:
        return measure(lambda: timed(pipeline), lambda: timed(group), repeat)
    finally:
        stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    _, redis_url = fresh_services("bench/engine.py")
    logs = ROOT / "var" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    raw = bench_raw(args.repeat, redis_url, logs)
    ours = bench_bulwark(args.repeat, dict(os.environ), logs)

    seq_ours, seq_raw = statistics.median(ours["sequential"]), statistics.median(raw["sequential"])
    fan_ours, fan_raw = statistics.median(ours["fan_out"]), statistics.median(raw["fan_out"])
    print(f"engine benchmark, median of {args.repeat} runs each (2 worker processes x 8 threads)")
    print(
        f"sequential, 10 steps:   Bulwark {seq_ours * 1000:7.1f} ms  = {seq_ours * 100:5.2f} ms/step   "
        f"raw dramatiq pipeline {seq_raw * 1000:7.1f} ms = {seq_raw * 100:5.2f} ms/hop   "
        f"ratio {seq_ours / seq_raw:.2f} (target <= 1.0)"
    )
    print(
        f"fan-out 100 + join:     Bulwark {fan_ours * 1000:7.1f} ms  = {102 / fan_ours:6.0f} steps/s "
        f"({fan_ours * 1000 / 102:.2f} ms/step)   raw dramatiq group {fan_raw * 1000:7.1f} ms = "
        f"{101 / fan_raw:6.0f} msg/s   ratio {fan_ours / fan_raw:.2f} (target >= 400 steps/s)"
    )


if __name__ == "__main__":
    main()
