"""Bulk replay: re-run the runs of a playbook that failed in a time window (a vendor's
outage, say), at a bounded rate.

Asking stores the batch and its runs and records who asked (`playbook.replay_requested`);
the scheduler's pass then starts their re-runs (core.runs.rerun), at most
BULWARK_REPLAY_RUNS_PER_SECOND for all replays together. A run that already has a re-run
is not replayed again, checked when it is asked and again, under the run's lock, when its
re-run starts: asking twice, or a person re-running or resuming it meanwhile, never
does its work twice.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.events import record_event
from core.engine.state import RunStatus
from core.models import ReplayBatch, ReplayItem, Run
from core.runs import RunRefused, rerun
from playbooks.models import Playbook

log = logging.getLogger(__name__)

# What a replay re-runs: runs that ended failing (compensated ones undid their work).
REPLAYED = (RunStatus.FAILED, RunStatus.COMPENSATED)
# A pass starts at most this many seconds' worth of runs (a scheduler back from a stop).
BURST_SECONDS = 5.0


class ReplayRefused(Exception):
    """The replay cannot be asked for as given; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def failed_runs(playbook: Playbook, since: datetime, until: datetime) -> list[Run]:
    """The runs of `playbook` that ended failing in [since, until) and have no re-run."""
    return list(
        Run.objects.filter(
            playbook=playbook,
            dry_run=False,
            status__in=REPLAYED,
            finished_at__gte=since,
            finished_at__lt=until,
            reruns__isnull=True,
        )
        .exclude(pk__in=ReplayItem.objects.filter(run__isnull=True, error="").values("original"))
        .order_by("finished_at", "id")
    )


def request_replay(
    *, playbook: Playbook, since: datetime, until: datetime, actor: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> ReplayBatch:  # fmt: skip
    """Store a replay of the runs that failed in the window; the scheduler starts them."""
    if since >= until:
        raise ReplayRefused("until", "must be after since")
    if settings.BULWARK_REPLAY_RUNS_PER_SECOND <= 0:
        raise ReplayRefused("", "replays are off (BULWARK_REPLAY_RUNS_PER_SECOND is 0)")
    with transaction.atomic():
        runs = failed_runs(playbook, since, until)
        limit = settings.BULWARK_REPLAY_MAX_RUNS
        if len(runs) > limit:
            raise ReplayRefused("since", f"{len(runs)} runs failed in the window; a replay "
                                f"takes at most {limit} (narrow the window)")  # fmt: skip
        rate = settings.BULWARK_REPLAY_RUNS_PER_SECOND
        batch = ReplayBatch.objects.create(
            playbook=playbook, since=since, until=until, actor=actor, rate_per_second=rate,
            created_by=user if isinstance(user, User) else None,
            finished_at=timezone.now() if not runs else None,
        )  # fmt: skip
        ReplayItem.objects.bulk_create(ReplayItem(batch=batch, original=run) for run in runs)
        record_event(
            stream=f"playbook:{playbook.name}",
            kind="playbook.replay_requested",
            actor=actor,
            payload={
                "replay": batch.pk,
                "since": since.isoformat(),
                "until": until.isoformat(),
                "runs": [run.pk for run in runs],
                "rate_per_second": rate,
            },
            playbook=playbook.name,
        )
    return batch


def start_due_replays(now: datetime | None = None) -> int:
    """The scheduler's duty: start the re-runs the rate allows by now, oldest batch first.

    The rate holds for all replays together, and a scheduler that was stopped does not
    catch up in a burst: at most BURST_SECONDS' worth of runs start in one pass."""
    now = now or timezone.now()
    rate = settings.BULWARK_REPLAY_RUNS_PER_SECOND
    if rate <= 0:
        return 0
    last = ReplayItem.objects.aggregate(last=Max("started_at"))["last"]
    if last is None:
        budget = 1
    else:
        elapsed = min(max(0.0, (now - last).total_seconds()), BURST_SECONDS)
        budget = math.floor(elapsed * rate)
    started = 0
    for batch in ReplayBatch.objects.filter(finished_at__isnull=True).order_by("id"):
        while started < budget and _start_next(batch, now):
            started += 1
        if not batch.items.filter(started_at__isnull=True).exists():
            ReplayBatch.objects.filter(pk=batch.pk, finished_at__isnull=True).update(
                finished_at=now
            )
    return started


def _start_next(batch: ReplayBatch, now: datetime) -> bool:
    """Re-run the batch's next waiting run; False when none is left. A run that cannot
    be re-run (re-run or resumed meanwhile, its inputs refused) keeps why, audited."""
    with transaction.atomic():
        item = (
            batch.items.select_for_update(skip_locked=True, of=("self",))
            .filter(started_at__isnull=True).select_related("original__playbook").first()
        )  # fmt: skip
        if item is None:
            return False
        item.started_at = now
        try:
            with transaction.atomic():  # a refused re-run leaves nothing but its reason
                item.run = rerun(run=item.original, actor=batch.actor, user=batch.created_by,
                                 replay=batch.pk)  # fmt: skip
        except RunRefused as exc:
            item.error = "; ".join(f"{p}: {m}" if p else m for p, m in exc.problems) or exc.message
        except Exception as exc:  # one bad run must not stop the replay, or the others
            log.exception("replay %s: re-running run %s failed", batch.pk, item.original_id)
            item.error = f"{type(exc).__name__}: {exc}"
        if item.error:
            log.warning("replay %s: run %s not re-run: %s", batch.pk, item.original_id, item.error)
            record_event(stream=f"run:{item.original_id}", kind="run.rerun_refused",
                         actor=batch.actor, run_id=item.original_id,
                         payload={"replay": batch.pk, "error": item.error[:500]})  # fmt: skip
        item.save(update_fields=["started_at", "run", "error"])
    return True
