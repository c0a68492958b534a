"""Dramatiq actors: ids in, one function call, nothing else."""

from __future__ import annotations

import dramatiq

from core.approvals.notify import deliver_notice
from core.broker import QUEUE
from core.drain import execute_drain_message
from core.execution import execute_unit_message


@dramatiq.actor(actor_name="bulwark.execute_unit", queue_name=QUEUE)
def execute_unit(unit_id: int, token: int) -> None:
    """Claim and run unit `unit_id` if it is still queued under `token`."""
    execute_unit_message(unit_id, token)


@dramatiq.actor(actor_name="bulwark.drain_run", queue_name=QUEUE)
def drain_run(run_id: int) -> None:
    """Claim and run queued units of run `run_id` until none is left."""
    execute_drain_message(run_id)


@dramatiq.actor(actor_name="bulwark.announce_approval", queue_name=QUEUE)
def announce_approval(notice_id: int, occasion: str) -> None:
    """Send approval notice `notice_id` (`occasion` tells a reader of the queue why)."""
    deliver_notice(notice_id)
