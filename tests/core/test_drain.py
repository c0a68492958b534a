"""Drain wake-ups: a wide fan-out is run by a few messages naming the run, not one per unit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from audit.models import AuditEvent
from audit.verify import verify_chains
from core import drain
from core.dispatch import InlineDispatcher
from core.drain import Drainer, claim_queued, execute_drain_message
from core.execution import Claimed, run_claimed
from core.fast_sql import record_and_take_next
from core.models import Attempt, Run, StepRun
from core.reconciler import sweep
from core.runs import start_run
from core.transitions import drain_wakeups
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH = 12


def wide(width: int = WIDTH, *, failing: str | None = None) -> dict:
    branches = [echo(f"b{i:02d}", "root") for i in range(width)]
    if failing is not None:
        branches = [
            {"id": b["id"], "action": "util.fail", "needs": ["root"]} if b["id"] == failing else b
            for b in branches
        ]
    return definition(echo("root"), *branches, echo("join", *[b["id"] for b in branches]))


def start(defn: dict) -> Run:
    version = published_version(defn)
    return start_run(playbook=version.playbook, actor="user:bob")


def run_root(inline_dispatch: InlineDispatcher, run: Run) -> None:
    """Run only the root's message: its completion queues the branches."""
    from core.execution import claim_unit, complete

    unit_id, token = inline_dispatch.pending.popleft()
    claimed = claim_unit(unit_id, token, worker="test-root")
    assert claimed is not None
    assert claimed.key.step == "root"
    assert complete(claimed, run_claimed(claimed), worker="test-root", eager=False) is None


def first_drained(inline_dispatch: InlineDispatcher, defn: dict | None = None) -> Claimed:
    """Start a wide run, run its root, and claim its first queued unit as a drainer."""
    run = start(defn or wide())
    run_root(inline_dispatch, run)
    first = claim_queued(run.pk, worker="drainer")
    assert first is not None
    return first


def test_a_wide_fan_out_sends_drain_wake_ups_instead_of_a_message_per_unit(
    inline_dispatch: InlineDispatcher, settings
) -> None:
    settings.BULWARK_DRAIN_WAKEUPS = 3
    run = start(wide())
    run_root(inline_dispatch, run)
    assert inline_dispatch.sent == [(StepRun.objects.get(run=run, step_id="root").pk, 1)]
    assert inline_dispatch.drains_sent == [run.pk] * 3
    assert StepRun.objects.filter(run=run, status="queued").count() == WIDTH


def test_a_narrow_fan_out_still_sends_a_message_per_unit(
    inline_dispatch: InlineDispatcher, settings
) -> None:
    settings.BULWARK_DRAIN_THRESHOLD = WIDTH + 1
    run = start(wide())
    run_root(inline_dispatch, run)
    assert len(inline_dispatch.sent) == 1 + WIDTH
    assert inline_dispatch.drains_sent == []


def test_one_drainer_runs_every_queued_unit_once_and_the_run_completes(
    inline_dispatch: InlineDispatcher, settings
) -> None:
    settings.BULWARK_DRAIN_WAKEUPS = 3
    run = start(wide())
    run_root(inline_dispatch, run)
    execute_drain_message(run.pk)  # the first wake-up does it all, join included (eagerly)
    run.refresh_from_db()
    assert run.status == "succeeded"
    for unit in StepRun.objects.filter(run=run):
        assert (unit.status, unit.attempts, unit.result) == ("succeeded", 1, None), unit
    inline_dispatch.drain()  # the other two wake-ups find nothing to do
    assert Attempt.objects.filter(unit__run=run).count() == WIDTH + 2
    assert set(Attempt.objects.filter(unit__run=run).values_list("outcome", flat=True)) == {
        "succeeded"
    }
    kinds = list(AuditEvent.objects.filter(run_id=run.pk).values_list("kind", flat=True))
    assert kinds.count("attempt.succeeded") == WIDTH + 2
    assert verify_chains().ok


def test_a_drain_wake_up_for_a_finished_run_changes_nothing(
    inline_dispatch: InlineDispatcher,
) -> None:
    run = start(wide())
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    events = AuditEvent.objects.count()
    for _ in range(3):
        execute_drain_message(run.pk)
    assert Attempt.objects.filter(unit__run=run).count() == WIDTH + 2
    assert AuditEvent.objects.count() == events


def test_units_whose_drain_wake_ups_were_lost_are_woken_again_by_the_scheduler(
    inline_dispatch: InlineDispatcher, settings
) -> None:
    settings.BULWARK_REDISPATCH_SECONDS = 5
    settings.BULWARK_DRAIN_WAKEUPS = 2
    run = start(wide())
    run_root(inline_dispatch, run)
    inline_dispatch.pending_drains.clear()  # the broker lost them
    StepRun.objects.filter(run=run, status="queued").update(
        queued_at=timezone.now() - timedelta(seconds=6)
    )
    assert sweep().redispatched == WIDTH
    assert list(inline_dispatch.pending_drains) == [run.pk, run.pk]  # drain wake-ups again
    assert not inline_dispatch.pending
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert Attempt.objects.filter(unit__run=run).count() == WIDTH + 2


def test_a_few_stale_units_of_a_run_are_sent_again_one_by_one(
    inline_dispatch: InlineDispatcher, settings
) -> None:
    settings.BULWARK_REDISPATCH_SECONDS = 5
    settings.BULWARK_DRAIN_THRESHOLD = WIDTH + 1
    run = start(wide())
    run_root(inline_dispatch, run)
    inline_dispatch.pending.clear()  # the broker lost them
    StepRun.objects.filter(run=run, status="queued").update(
        queued_at=timezone.now() - timedelta(seconds=6)
    )
    assert sweep().redispatched == WIDTH
    assert len(inline_dispatch.pending) == WIDTH
    assert not inline_dispatch.pending_drains
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_drainer_leaves_results_for_later_within_the_apply_interval(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drain, "DRAIN_APPLY_SECONDS", 3600.0)
    first = first_drained(inline_dispatch)
    second = Drainer("drainer").complete(first, run_claimed(first))
    assert second is not None
    assert second.unit_id != first.unit_id
    unit = StepRun.objects.get(pk=first.unit_id)
    assert unit.status == "running"
    assert unit.result is not None
    assert Attempt.objects.get(unit=unit).outcome == "succeeded"
    assert StepRun.objects.get(pk=second.unit_id).status == "running"


def test_a_drainer_applies_its_results_once_the_interval_has_passed(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drain, "DRAIN_APPLY_SECONDS", 0.0)
    first = first_drained(inline_dispatch)
    assert Drainer("drainer").complete(first, run_claimed(first)) is not None
    unit = StepRun.objects.get(pk=first.unit_id)
    assert (unit.status, unit.result) == ("succeeded", None)


def test_a_failure_is_applied_before_the_drainer_claims_more(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drain, "DRAIN_APPLY_SECONDS", 3600.0)
    first = first_drained(inline_dispatch, wide(failing="b00"))
    run = Run.objects.get(pk=first.run_id)
    assert first.key.step == "b00"
    drainer = Drainer("drainer")
    following = drainer.complete(first, run_claimed(first))
    assert StepRun.objects.get(pk=first.unit_id).status == "failed"
    assert following is not None
    assert following.key.step == "b01"
    while following is not None:
        assert following.drained
        following = drainer.complete(following, run_claimed(following))
    run.refresh_from_db()
    assert run.status == "failed"
    assert StepRun.objects.get(run=run, step_id="join").status == "skipped"


def test_a_fenced_result_is_not_recorded_but_the_next_unit_is_still_claimed(
    inline_dispatch: InlineDispatcher,
) -> None:
    run = start(wide())
    run_root(inline_dispatch, run)
    first = claim_queued(run.pk, worker="zombie")
    assert first is not None
    StepRun.objects.filter(pk=first.unit_id).update(attempts=first.attempt + 1)  # taken over
    now = timezone.now()
    recorded, following = record_and_take_next(
        unit_id=first.unit_id, attempt=first.attempt, result={"attempt": first.attempt},
        run_id=run.pk, lease_seconds=30, attempt_group=first.attempt_group, worker="zombie",
        idempotency_key=first.idempotency_key, started_at=first.started_at, outcome="succeeded",
        finished_at=now, duration_ms=1.0, error=None,
    )  # fmt: skip
    assert recorded is False
    assert StepRun.objects.get(pk=first.unit_id).result is None
    assert not Attempt.objects.filter(unit_id=first.unit_id).exists()
    assert following is not None
    assert following["id"] != first.unit_id
    assert StepRun.objects.get(pk=following["id"]).status == "running"


def test_nothing_is_claimed_once_the_run_has_no_queued_unit(
    inline_dispatch: InlineDispatcher,
) -> None:
    run = start(wide())
    assert claim_queued(run.pk, worker="drainer") is not None  # the root
    assert claim_queued(run.pk, worker="drainer") is None


@pytest.mark.parametrize(
    ("queued", "wakeups", "expected"),
    [(8, 16, 8), (20, 16, 16), (100, 16, 16), (1000, 16, 125), (30, 4, 4)],
)
def test_the_number_of_wake_ups_covers_the_worker_threads_but_never_exceeds_the_units(
    settings, queued: int, wakeups: int, expected: int
) -> None:
    settings.BULWARK_DRAIN_WAKEUPS = wakeups
    assert drain_wakeups(queued) == expected


@pytest.mark.parametrize(("value", "problem"), [("many", "whole number"), ("0", "at least 1")])
def test_a_bad_drain_setting_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    from config.settings import _env_int

    monkeypatch.setenv("BULWARK_DRAIN_WAKEUPS", value)
    with pytest.raises(ImproperlyConfigured, match=f"BULWARK_DRAIN_WAKEUPS must be.*{problem}"):
        _env_int("BULWARK_DRAIN_WAKEUPS", 16)


def test_units_are_created_in_one_go_and_in_batches_within_the_parameter_limit(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    from core.fast_sql import insert_units

    run = start(wide())
    features = type(connection.features)
    monkeypatch.setattr(features, "max_query_params", 40)  # a few rows a statement
    rows = [{"step_id": "extra", "item_index": i, "status": "pending"} for i in range(25)]
    ids = insert_units(run.pk, rows)
    assert sorted(item for _, item, _ in ids) == list(range(25))
    created = StepRun.objects.filter(run=run, step_id="extra")
    assert sorted(created.values_list("pk", flat=True)) == sorted(ids.values())
    assert {(u.phase, u.attempts, u.max_attempts, u.lease_owner) for u in created} == {
        ("main", 0, 1, "")
    }
