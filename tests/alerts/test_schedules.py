"""Scheduled triggers: each due time one run, however many schedulers; downtime policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.models import Schedule
from alerts.schedules import _fire, fire_due_schedules, next_due, sync_schedules
from audit.models import AuditEvent
from core.models import Run
from core.reconciler import SweepResult
from tests.conftest import client_for
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # a Monday, 01:30 UTC


def nightly(missed: str | None = None, tz: str = "UTC") -> Any:
    trigger: dict[str, Any] = {"schedule": "0 2 * * *", "inputs": {"when": "{{ schedule.due_at }}"}}
    if missed:
        trigger["missed"] = missed
    return published_version(definition(echo("patch"), name="nightly", timezone=tz, triggers=[trigger],
                                        inputs={"when": {"type": "string"}}))  # fmt: skip


def test_a_due_schedule_starts_one_run_and_moves_to_the_next_due_time(
    time_machine: Any, dave: Any
) -> None:
    time_machine.move_to(START)
    nightly()
    fire_due_schedules(SweepResult())
    assert not Run.objects.exists()
    shown = client_for(dave).get("/api/v1/schedules/").json()
    (row,) = shown["results"] if isinstance(shown, dict) else shown
    assert (row["playbook"], row["cron"], row["next_due_at"]) == (
        "nightly",
        "0 2 * * *",
        "2026-12-07T02:00:00Z",
    )
    time_machine.move_to(START + timedelta(minutes=31))
    fire_due_schedules(SweepResult())
    (run,) = Run.objects.all()
    assert (run.actor, run.inputs["when"]) == ("system:scheduler", "2026-12-07T02:00:00+00:00")
    assert Schedule.objects.get().next_due_at == datetime(2026, 12, 8, 2, 0, tzinfo=UTC)


def test_two_schedulers_firing_the_same_due_time_start_one_run(time_machine: Any) -> None:
    time_machine.move_to(START)
    nightly()
    sync_schedules(START)
    first, second = Schedule.objects.get(), Schedule.objects.get()  # both saw it due
    now = START + timedelta(minutes=31)
    _fire(first, now)
    _fire(second, now)
    assert Run.objects.count() == 1


@pytest.mark.parametrize(("policy", "runs"), [(None, 1), ("run_once", 1), ("skip", 0)])
def test_after_downtime_missed_times_run_once_or_are_skipped(time_machine: Any, policy: str | None,
                                                            runs: int) -> None:  # fmt: skip
    time_machine.move_to(START)
    nightly(policy)
    sync_schedules(START)
    time_machine.move_to(START + timedelta(days=3))  # three nights missed
    fire_due_schedules(SweepResult())
    fire_due_schedules(SweepResult())
    assert Run.objects.count() == runs
    assert Schedule.objects.get().next_due_at == datetime(2026, 12, 10, 2, 0, tzinfo=UTC)
    assert AuditEvent.objects.filter(kind="schedule.skipped").count() == (
        1 if policy == "skip" else 0
    )


def test_cron_is_read_in_the_playbooks_time_zone() -> None:
    # 02:00 in Paris is 01:00 UTC in winter.
    assert next_due("0 2 * * *", "Europe/Paris", START - timedelta(hours=1)) == datetime(
        2026, 12, 7, 1, 0, tzinfo=UTC
    )


def test_a_retired_versions_schedule_stops(time_machine: Any) -> None:
    time_machine.move_to(START)
    version = nightly()
    sync_schedules(START)
    type(version).objects.filter(pk=version.pk).update(state="retired")
    time_machine.move_to(START + timedelta(hours=1))
    fire_due_schedules(SweepResult())
    assert not Run.objects.exists()
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("cron", ["61 * * * *", "* * *", "0 2 * * mon-xyz"])
def test_an_invalid_cron_is_refused_by_the_definition(cron: str) -> None:
    from pydantic import ValidationError

    from playbooks.definition import parse_definition

    with pytest.raises(ValidationError, match="not a cron expression"):
        parse_definition(
            {
                "name": "x",
                "triggers": [{"schedule": cron}],
                "steps": [{"id": "a", "action": "util.echo"}],
            }
        )


def test_missed_applies_to_schedules_only() -> None:
    from pydantic import ValidationError

    from playbooks.definition import parse_definition

    with pytest.raises(ValidationError, match="'missed' applies to schedules"):
        parse_definition({"name": "x", "triggers": [{"source": "edr", "missed": "skip"}],
                          "steps": [{"id": "a", "action": "util.echo"}]})  # fmt: skip
