"""`manage.py scheduler`: the reconciler loop (retry timers, lost messages, dead workers)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

log = logging.getLogger("bulwark.scheduler")


def run_scheduler(stop: threading.Event, tick: float) -> None:
    from core.reconciler import sweep

    while not stop.is_set():
        try:
            sweep()
        except Exception:
            log.exception("scheduler sweep failed; retrying next tick")
        finally:
            close_old_connections()
        stop.wait(tick)


class Command(BaseCommand):
    help = (
        "Run the scheduler: fires retries, recovers lost messages and attempts whose worker died."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tick", type=float, default=None, help="seconds between sweeps")
        parser.add_argument("--once", action="store_true", help="run one sweep and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            from core.reconciler import sweep

            result = sweep()
            self.stdout.write(
                f"retries fired {result.retries_fired}, leases recovered {result.leases_recovered}, "
                f"messages re-sent {result.redispatched}"
            )
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        tick = options["tick"] or settings.BULWARK_SCHEDULER_TICK_SECONDS
        self.stdout.write(f"scheduler: sweeping every {tick:g}s")
        run_scheduler(stop, tick)
