"""Dramatiq actors: ids in, one function call, nothing else."""

from __future__ import annotations

import dramatiq

from core.broker import QUEUE
from core.execution import execute_unit_message


@dramatiq.actor(actor_name="bulwark.execute_unit", queue_name=QUEUE)
def execute_unit(unit_id: int, token: int) -> None:
    """Claim and run unit `unit_id` if it is still queued under `token`."""
    execute_unit_message(unit_id, token)
