"""A rate limit shared through the database: GCRA over one row's `rate_tat` column.

A request may go when the row's next free slot ("theoretical arrival time") is no later
than now plus a small burst allowance; taking it moves the slot on by one interval. The
check and the move are one conditional UPDATE, so every process agrees."""

from __future__ import annotations

import time
from typing import Any

from django.db.models import F, QuerySet, Value
from django.db.models.functions import Greatest


def take_slot(row: QuerySet[Any], per_minute: int) -> float | None:
    """Take a slot on the one row `row` selects: None when taken, else seconds to wait."""
    interval = 60.0 / per_minute
    burst = max(1, per_minute // 20) * interval  # about three seconds' worth at once
    now = time.time()
    if row.filter(rate_tat__lte=now + burst - interval).update(
        rate_tat=Greatest(F("rate_tat"), Value(now)) + interval
    ):
        return None
    tat = row.values_list("rate_tat", flat=True).first() or now
    return float(max(interval, tat - burst - now))
