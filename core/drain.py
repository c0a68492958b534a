"""Drain wake-ups: a wide fan-out run by a few messages instead of one per unit.

When a transition queues many units of a run at once (a fan-out, a `for_each`), the
dispatcher sends a handful of "drain" wake-ups for the run rather than a message per
unit (core.transitions.dispatch_on_commit). A worker woken so claims the run's lowest
queued unit, runs it, and then, in one statement, records the result and claims the
next queued unit, until none is left. Broker traffic, claims and attempts at the run's
lock all shrink from one per unit to a few per fan-out.

Nothing about correctness changes: each claim is still one conditional UPDATE
(queued → running, attempts counted, leased), results are still fenced by the attempt
number, and units whose wake-ups were lost are re-sent one by one by the scheduler.
Recorded results are applied under the run's lock as they are for any sibling: by the
drainer when the run is free, at most every DRAIN_APPLY_SECONDS (and at once for a
failure, so `on_failure` takes effect before more siblings start), and always when it
finds nothing left to claim; otherwise by whoever holds the lock, after its COMMIT.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from core.engine.events import Nudge
from core.execution import (
    Claimed,
    Outcome,
    attempt_result,
    attempt_row,
    claimed_unit,
    complete,
    eager_take,
    pinned_plan,
    reject_zombie,
    run_claimed,
    start_attempt,
    worker_name,
)
from core.fast_sql import record_and_take_next, record_finished_attempt, take_queued_unit
from core.lease import lease_keeper
from core.transitions import RunBusy, apply_event

log = logging.getLogger(__name__)

# How long a drainer may leave its recorded results for later: short enough that a
# step downstream of one branch is not held up noticeably, long enough that draining a
# hundred quick units takes the run's lock a few times, not a hundred.
DRAIN_APPLY_SECONDS = 0.05


def _claimed(row: dict[str, Any] | None, worker: str) -> Claimed | None:
    if row is None:
        return None
    unit = claimed_unit(row)
    return start_attempt(
        run_id=row["run_id"], unit_id=row["id"], unit=unit, attempt=unit.attempts,
        plan=pinned_plan(row["run_id"]), worker=worker, drained=True,
    )  # fmt: skip


def claim_queued(run_id: int, *, worker: str) -> Claimed | None:
    """Claim the run's lowest queued unit for a drainer; None when nothing is queued."""
    row = take_queued_unit(run_id, worker=worker, lease_seconds=settings.BULWARK_LEASE_SECONDS)
    return _claimed(row, worker)


def apply_now(run_id: int, *, worker: str, eager: bool) -> Claimed | None:
    """Apply the run's recorded results if its lock is free (never waiting for it); with
    `eager`, claim a unit that this queues. Returns the claimed unit, if any."""
    taken: list[Claimed] = []
    try:
        apply_event(run_id, Nudge(), actor=worker, wait_for_lock=False,
                    before_commit=eager_take(worker, taken, enabled=eager))  # fmt: skip
    except RunBusy:
        return None  # the holder applies what was recorded, after its COMMIT
    return taken[0] if taken else None


class Drainer:
    """One worker thread's pass over a run's queued units."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.last_apply = time.monotonic()

    def complete(self, claimed: Claimed, outcome: Outcome) -> Claimed | None:
        """Record a drained unit's outcome and return the next unit to run, if any."""
        finished = timezone.now()
        result = attempt_result(claimed, outcome, finished)
        row = attempt_row(claimed, result, finished)
        if not outcome.settled:
            # Applied before anything else is claimed: a failure may stop the run (and a
            # unit that waits to be polled again is parked at once).
            recorded = record_finished_attempt(
                unit_id=claimed.unit_id, attempt=claimed.attempt, result=result.as_json(), **row
            )
            if not recorded:
                reject_zombie(claimed, outcome, self.worker)
            return self._apply(claimed.run_id) or claim_queued(claimed.run_id, worker=self.worker)
        recorded, next_row = record_and_take_next(
            unit_id=claimed.unit_id, attempt=claimed.attempt, result=result.as_json(),
            run_id=claimed.run_id, lease_seconds=settings.BULWARK_LEASE_SECONDS, **row,
        )  # fmt: skip
        if not recorded:
            reject_zombie(claimed, outcome, self.worker)
        following = _claimed(next_row, self.worker)
        if following is None:
            return self._apply(claimed.run_id)
        if time.monotonic() - self.last_apply >= DRAIN_APPLY_SECONDS:
            self._apply(claimed.run_id, eager=False)
        return following

    def _apply(self, run_id: int, *, eager: bool = True) -> Claimed | None:
        self.last_apply = time.monotonic()
        return apply_now(run_id, worker=self.worker, eager=eager)


def execute_drain_message(run_id: int) -> None:
    """Handle one drain wake-up: run the run's queued units until none is left, then go
    on with whatever applying their results handed to this worker (eager dispatch)."""
    worker = worker_name()
    claimed = claim_queued(run_id, worker=worker)
    if claimed is None:
        log.debug("drain wake-up for run %s: nothing queued", run_id)
        return
    drainer = Drainer(worker)
    keeper = lease_keeper()
    while claimed is not None:
        current = claimed
        try:
            outcome = run_claimed(current)
            if current.drained:
                claimed = drainer.complete(current, outcome)
            else:
                claimed = complete(current, outcome, worker=worker)
        finally:
            keeper.release(current.unit_id, current.attempt)
