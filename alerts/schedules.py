"""Scheduled triggers: each `schedule:` of a published version starts a run at every due
time (cron, in the playbook's time zone), exactly once however many schedulers run.

After downtime, `missed: run_once` (the default) starts one run for the missed times and
`missed: skip` starts none; either way the next due time is the next one from now.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime
from typing import Any

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from alerts.models import Schedule
from audit.events import record_event
from core.reconciler import SweepResult
from core.runs import RunRefused, start_run
from playbooks.expressions import ExpressionError, render_value
from playbooks.models import PlaybookVersion

log = logging.getLogger(__name__)


def next_due(cron: str, tz: str, after: datetime) -> datetime:
    """The first due time strictly after `after`, in the playbook's time zone."""
    local = after.astimezone(zoneinfo.ZoneInfo(tz))
    due: datetime = croniter(cron, local).get_next(datetime)
    return due.astimezone(zoneinfo.ZoneInfo("UTC"))


def sync_schedules(now: datetime) -> None:
    """One Schedule row per schedule trigger of every published version (new versions
    start from now; retired versions' rows are removed)."""
    published = PlaybookVersion.objects.filter(state=PlaybookVersion.State.PUBLISHED)
    Schedule.objects.exclude(version__in=published).delete()
    known = set(Schedule.objects.values_list("version_id", "trigger_index"))
    for version in published:
        tz = version.definition.get("timezone") or "UTC"
        for index, trigger in enumerate(version.definition.get("triggers") or []):
            if trigger.get("schedule") and (version.pk, index) not in known:
                Schedule.objects.get_or_create(
                    version=version, trigger_index=index,
                    defaults={"cron": trigger["schedule"], "next_due_at": next_due(trigger["schedule"], tz, now)},
                )  # fmt: skip


def fire_due_schedules(result: SweepResult) -> None:
    """The scheduler's duty: start the run of every schedule that is due."""
    now = timezone.now()
    sync_schedules(now)
    for schedule in Schedule.objects.filter(next_due_at__lte=now).select_related(
        "version__playbook"
    ):
        try:
            _fire(schedule, now)
        except Exception as exc:  # one bad schedule must not stop the others
            log.exception("schedule %s failed", schedule.pk)
            result.errors.append(f"schedule {schedule.pk}: {exc}")


def _fire(schedule: Schedule, now: datetime) -> None:
    version = schedule.version
    trigger: dict[str, Any] = version.definition["triggers"][schedule.trigger_index]
    tz = version.definition.get("timezone") or "UTC"
    due = schedule.next_due_at
    following = next_due(schedule.cron, tz, now)
    # Missed: more than one due time passed while nobody fired (downtime).
    missed = next_due(schedule.cron, tz, due) <= now
    with transaction.atomic():
        # Claim this due time; another scheduler that got here first moved it on already.
        claimed = Schedule.objects.filter(pk=schedule.pk, next_due_at=due).update(
            next_due_at=following
        )
        if not claimed:
            return
        where = f"{version.playbook.name} v{version.number} triggers[{schedule.trigger_index}]"
        if missed and trigger.get("missed") == "skip":
            Schedule.objects.filter(pk=schedule.pk).update(
                missed_skipped=schedule.missed_skipped + 1
            )
            record_event(stream="system", kind="schedule.skipped", actor="system:scheduler",
                         payload={"trigger": where, "due_at": due.isoformat(), "next_due_at": following.isoformat()})  # fmt: skip
            return
        context = {"schedule": {"cron": schedule.cron, "due_at": due.isoformat(), "missed": missed}}
        try:
            with transaction.atomic():
                inputs = render_value(trigger.get("inputs") or {}, context, path=f"{where}.inputs")
                run = start_run(playbook=version.playbook, inputs=inputs, version=version.number,
                                actor="system:scheduler", context=context)  # fmt: skip
        except (ExpressionError, RunRefused) as exc:
            log.warning("%s: the scheduled run was refused: %s", where, exc)
            record_event(stream="system", kind="schedule.failed", actor="system:scheduler",
                         payload={"trigger": where, "due_at": due.isoformat(), "error": str(exc)})  # fmt: skip
            return
        Schedule.objects.filter(pk=schedule.pk).update(last_fired_at=now, last_run=run)
