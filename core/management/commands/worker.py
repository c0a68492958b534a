"""`manage.py worker`: dramatiq worker processes on Redis, kept alive by a supervisor."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

log = logging.getLogger("bulwark.worker")
# How often idle worker threads wake to check for shutdown. Pickup latency does not
# depend on it: idle consumers wait for the doorbell (core.doorbell), not a poll timer.
IDLE_WAKE_MS = 1000


def run_worker_threads(threads: int, stop: threading.Event) -> None:
    """Consume the `actions` queue with `threads` threads until `stop` is set."""
    import dramatiq

    from core.broker import QUEUE

    worker = dramatiq.Worker(
        dramatiq.get_broker(), queues={QUEUE}, worker_threads=threads, worker_timeout=IDLE_WAKE_MS
    )
    worker.start()
    try:
        stop.wait()
    finally:
        worker.stop(timeout=10_000)


class Command(BaseCommand):
    help = "Run Bulwark worker processes (dramatiq on Redis); a supervisor restarts any that die."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
        parser.add_argument(
            "--threads", type=int, default=8, help="threads per process (default 8)"
        )
        parser.add_argument(
            "--child", action="store_true", help=self.help and "(internal) run one worker process"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "the worker needs REDIS_URL (use `manage.py standalone` for the embedded mode)"
            )
        if options["child"]:
            self._child(options["threads"])
        else:
            self._supervise(options["processes"], options["threads"])

    def _child(self, threads: int) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        log.info("worker process %s consuming with %d threads", os.getpid(), threads)
        run_worker_threads(threads, stop)

    def _spawn(self, threads: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ, BULWARK_EXIT_ON_LEASE_LOSS="1")
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        argv = [sys.executable, manage, "worker", "--child", "--threads", str(threads)]
        return subprocess.Popen(argv, env=env)  # noqa: S603 - our own interpreter and script

    def _supervise(self, processes: int, threads: int) -> None:
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        children = [self._spawn(threads) for _ in range(processes)]
        self.stdout.write(
            f"worker: {processes} processes x {threads} threads (pids {[c.pid for c in children]})"
        )
        while not stopping.wait(0.5):
            for index, child in enumerate(children):
                code = child.poll()
                if code is not None:
                    log.error(
                        "worker process %s exited with %s; starting a new one", child.pid, code
                    )
                    time.sleep(0.5)
                    children[index] = self._spawn(threads)
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
