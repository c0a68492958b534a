"""Audit retention as the engine applies it: old trails pruned, open runs' trails kept.

audit.retention does the pruning; what it cannot know, which runs are still open, is
told here. The scheduler's reconciler runs a pass every
BULWARK_AUDIT_RETENTION_CHECK_SECONDS; `manage.py audit_prune` runs one on demand.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.conf import settings

from audit.retention import PruneResult, prune_audit, retention_cutoff
from core.models import Run

# When this process's next pass is due (time.monotonic()); None: at the next sweep.
_next_pass: float | None = None
RETRY_SECONDS = 300.0


def open_runs(run_ids: set[int]) -> set[int]:
    """Those of the runs that have not finished: their trails are still being written."""
    return set(Run.objects.filter(pk__in=run_ids).active().values_list("pk", flat=True))


def prune_expired(now: datetime | None = None, *, actor: str = "system") -> PruneResult | None:
    """One retention pass; None when retention is off (BULWARK_AUDIT_RETENTION_DAYS=0)."""
    before = retention_cutoff(now)
    if before is None:
        return None
    days = settings.BULWARK_AUDIT_RETENTION_DAYS
    return prune_audit(before, keep_runs=open_runs, actor=actor,
                       reason=f"retention: older than {days} days")  # fmt: skip


def prune_if_due() -> PruneResult | None:
    """A retention pass, if none ran in this process for the check interval.

    A pass that fails is tried again after RETRY_SECONDS (or the interval, if shorter),
    not a whole interval later, nor at every sweep."""
    global _next_pass
    now = time.monotonic()
    if _next_pass is not None and now < _next_pass:
        return None
    interval = settings.BULWARK_AUDIT_RETENTION_CHECK_SECONDS
    _next_pass = now + min(RETRY_SECONDS, interval)
    result = prune_expired()
    _next_pass = now + interval
    return result
