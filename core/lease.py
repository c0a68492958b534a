"""Leases on claimed attempts, renewed by a heartbeat thread on the database's clock.

The heartbeat runs beside the step's thread, so a step that hogs its thread cannot stop
it. If a renewal finds the lease taken over (the reconciler judged the attempt lost),
that attempt is fenced: its context is flagged and its completion write will be refused.
If the database cannot be reached for most of a lease, every held attempt is fenced and,
in a worker process, the process exits before its leases end, so no attempt acts on
after someone else may have taken its place.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now

from core.models import Attempt, StepRun
from integrations.context import ActionContext

log = logging.getLogger(__name__)


def lease_deadline(seconds: float | None = None) -> ExpressionWrapper[CombinedExpression]:
    """`now() + lease` evaluated by the database, never by a worker's own clock."""
    span = timedelta(seconds=seconds if seconds is not None else settings.BULWARK_LEASE_SECONDS)
    return ExpressionWrapper(Now() + Value(span), output_field=DateTimeField())


class LeaseKeeper:
    """Renews the leases of the attempts this process is running."""

    def __init__(
        self, *, lease_seconds: float, on_lost_database: Callable[[], None] | None = None
    ) -> None:
        self.lease_seconds = lease_seconds
        self.on_lost_database = on_lost_database
        self._held: dict[tuple[int, int], ActionContext] = {}
        self._lock = threading.Lock()
        # Held while a renewal runs, so release_all can wait for one in flight.
        self._renewing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok = time.monotonic()

    def hold(self, unit_id: int, attempt: int, ctx: ActionContext) -> None:
        with self._lock:
            self._held[(unit_id, attempt)] = ctx
        self._ensure_thread()

    def release(self, unit_id: int, attempt: int) -> None:
        with self._lock:
            self._held.pop((unit_id, attempt), None)

    def release_all(self) -> None:
        """Stop vouching for every attempt (the scheduler recovers their units when the
        leases run out): the end of a test whose attempts did not finish."""
        with self._lock:
            self._held.clear()
        with self._renewing:  # a renewal in flight ends before this returns
            pass

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._last_ok = time.monotonic()
            self._thread = threading.Thread(
                target=self._loop, name="bulwark-heartbeat", daemon=True
            )
            self._thread.start()

    def stop(self, wait: float = 0.0) -> None:
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join(wait)

    def _loop(self) -> None:
        interval = self.lease_seconds / 3
        try:
            self._beat(interval)
        finally:
            connection.close()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.renew_once()
                self._last_ok = time.monotonic()
                if not self._held:
                    connection.close()  # idle: hold no database session open
            except Exception:
                log.exception("heartbeat: could not renew leases")
                close_old_connections()
                if time.monotonic() - self._last_ok > self.lease_seconds * 0.7:
                    self._fence_all("the database could not be reached to renew leases")

    def renew_once(self) -> None:
        with self._renewing:
            self._renew_held()

    def _renew_held(self) -> None:
        with self._lock:
            held = dict(self._held)
        if not held:
            return
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # A renewal that hangs (a network partition) must fail in time for the
                # worker to fence itself before its leases run out, not wait forever.
                timeout_ms = int(self.lease_seconds * 1000 / 3)
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = %s", [timeout_ms])
            for (unit_id, attempt), ctx in held.items():
                self._renew(unit_id, attempt, ctx)

    def _renew(self, unit_id: int, attempt: int, ctx: ActionContext) -> None:
        if time.monotonic() > ctx.deadline + self.lease_seconds:
            # The action ignored its timeout: stop vouching for it, so the scheduler
            # recovers the unit; the late result, if any, will be refused.
            log.error("unit %s attempt %s overran its timeout; fencing it", unit_id, attempt)
            ctx.fenced.set()
            self.release(unit_id, attempt)
            return
        # Only a lease that has not run out is renewed: once expired, the scheduler may
        # already have given the unit to another worker.
        renewed = StepRun.objects.filter(
            pk=unit_id, status="running", attempts=attempt, lease_expires_at__gt=Now()
        ).update(lease_expires_at=lease_deadline(self.lease_seconds))
        if not renewed:
            self.release(unit_id, attempt)
            if self._finished(unit_id, attempt):
                # Its result landed between this snapshot of the held attempts and the
                # worker's release: nothing was lost, and nothing is left to fence.
                log.debug("unit %s attempt %s finished while being renewed", unit_id, attempt)
                return
            log.warning("unit %s attempt %s lost its lease; fencing it", unit_id, attempt)
            ctx.fenced.set()

    @staticmethod
    def _finished(unit_id: int, attempt: int) -> bool:
        """The attempt ended on its own: its worker recorded how it ended. An attempt the
        scheduler judged lost is recorded as `lost` instead, and must be fenced."""
        return (
            Attempt.objects.filter(unit_id=unit_id, number=attempt)
            .exclude(outcome__in=[Attempt.Outcome.LOST, Attempt.Outcome.FENCED])
            .exists()
        )

    def _fence_all(self, why: str) -> None:
        with self._lock:
            held = list(self._held.values())
        if not held:
            return
        log.error("heartbeat: %s; fencing %d attempts", why, len(held))
        for ctx in held:
            ctx.fenced.set()
        if self.on_lost_database is not None:
            self.on_lost_database()


def exit_process() -> None:
    """Self-fencing for worker processes: stop before the leases run out."""
    log.critical("exiting: leases could not be renewed")
    os._exit(75)


_keeper: LeaseKeeper | None = None
_keeper_lock = threading.Lock()


def lease_keeper() -> LeaseKeeper:
    """This process's keeper (a worker process sets BULWARK_EXIT_ON_LEASE_LOSS)."""
    global _keeper
    with _keeper_lock:
        if _keeper is None:
            exits = os.environ.get("BULWARK_EXIT_ON_LEASE_LOSS") == "1"
            _keeper = LeaseKeeper(
                lease_seconds=settings.BULWARK_LEASE_SECONDS,
                on_lost_database=exit_process if exits else None,
            )
        return _keeper


def shutdown() -> None:
    """Stop this process's heartbeat (tests, and processes that are exiting)."""
    if _keeper is not None:
        _keeper.stop(wait=5.0)
