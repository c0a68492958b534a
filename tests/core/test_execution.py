"""The database shell: claims, fencing, eager dispatch, audit, with the inline dispatcher."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.verify import verify_chains
from core.dispatch import InlineDispatcher
from core.execution import claim_unit, complete, execute_unit_message, run_claimed, worker_name
from core.models import Attempt, Run, StepRun
from core.reconciler import sweep
from core.runs import start_run
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)


def start(defn: dict, **inputs) -> Run:
    version = published_version(defn)
    return start_run(playbook=version.playbook, inputs=inputs, actor="user:bob")


def units(run: Run) -> dict[str, StepRun]:
    return {u.unit_label: u for u in StepRun.objects.filter(run=run)}


def test_starting_a_run_queues_its_first_steps_after_commit(
    inline_dispatch: InlineDispatcher,
) -> None:
    run = start(definition(echo("a"), echo("b"), echo("c", "a", "b")))
    state = units(run)
    assert (state["a"].status, state["b"].status, state["c"].status) == (
        "queued",
        "queued",
        "pending",
    )
    assert sorted(inline_dispatch.sent) == sorted([(state["a"].pk, 1), (state["b"].pk, 1)])
    kinds = list(
        AuditEvent.objects.filter(run_id=run.pk).order_by("seq").values_list("kind", flat=True)
    )
    assert kinds[:2] == ["run.created", "run.started"]
    assert kinds.count("step.queued") == 2


def test_a_run_executes_to_success_and_its_audit_chain_verifies(
    inline_dispatch: InlineDispatcher,
) -> None:
    run = start(definition(echo("a"), echo("b", "a"), echo("c", "b")))
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.finished_at is not None
    assert all(u.status == "succeeded" and u.attempts == 1 for u in units(run).values())
    assert units(run)["c"].output == {"message": "c", "data": {}}
    assert verify_chains().ok


def test_the_finishing_worker_runs_the_next_step_itself(inline_dispatch: InlineDispatcher) -> None:
    run = start(definition(echo("a"), echo("b", "a"), echo("c", "b")))
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert len(inline_dispatch.sent) == 1  # b and c were claimed eagerly, never sent


def test_a_duplicate_message_executes_nothing_twice(inline_dispatch: InlineDispatcher) -> None:
    run = start(definition(echo("a")))
    message = inline_dispatch.sent[0]
    inline_dispatch.pending.append(message)
    inline_dispatch.drain()
    assert Attempt.objects.filter(unit__run=run).count() == 1


def test_a_stale_dispatch_token_is_ignored(inline_dispatch: InlineDispatcher) -> None:
    run = start(definition(echo("a")))
    unit_id, token = inline_dispatch.pending.popleft()
    execute_unit_message(unit_id, token - 1)
    assert StepRun.objects.get(pk=unit_id).status == "queued"
    assert not Attempt.objects.filter(unit__run=run).exists()


def test_attempts_are_counted_at_the_claim(inline_dispatch: InlineDispatcher) -> None:
    start(definition(echo("a")))
    unit_id, token = inline_dispatch.pending.popleft()
    claimed = claim_unit(unit_id, token, worker="w1")
    assert claimed is not None
    unit = StepRun.objects.get(pk=unit_id)
    assert (unit.status, unit.attempts, unit.lease_owner) == ("running", 1, "w1")
    assert unit.lease_expires_at > timezone.now()


def expire_lease(unit_id: int) -> None:
    StepRun.objects.filter(pk=unit_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_zombie_completion_after_lease_takeover_changes_nothing_and_is_audited(
    inline_dispatch: InlineDispatcher,
) -> None:
    run = start(definition(echo("a", retry={"attempts": 3})))
    unit_id, token = inline_dispatch.pending.popleft()
    zombie = claim_unit(unit_id, token, worker="zombie")
    expire_lease(unit_id)
    assert sweep().leases_recovered == 1
    inline_dispatch.drain()  # attempt 2 runs and succeeds
    assert complete(zombie, run_claimed(zombie), worker="zombie") is None
    unit = StepRun.objects.get(pk=unit_id)
    assert (unit.status, unit.attempts) == ("succeeded", 2)
    assert Attempt.objects.get(unit=unit, number=1).outcome == "fenced"
    assert (
        AuditEvent.objects.filter(run_id=run.pk, kind="attempt.fenced_write_rejected").count() == 1
    )


def test_a_step_that_keeps_killing_its_worker_needs_attention_after_its_attempts(
    inline_dispatch: InlineDispatcher,
) -> None:
    run = start(definition(echo("a", retry={"attempts": 3}), echo("b", "a")))
    for _ in range(3):
        unit_id, token = inline_dispatch.pending.popleft()
        assert claim_unit(unit_id, token, worker="doomed") is not None
        expire_lease(unit_id)
        sweep()
    run.refresh_from_db()
    unit = units(run)["a"]
    assert (unit.status, unit.attempts) == ("needs_attention", 3)
    assert unit.error["kind"] == "worker_lost"
    assert run.status == "needs_attention"
    assert not inline_dispatch.pending
    assert list(Attempt.objects.filter(unit=unit).values_list("outcome", flat=True)) == ["lost"] * 3


def test_a_transient_failure_retries_under_the_same_idempotency_key(
    inline_dispatch: InlineDispatcher, time_machine
) -> None:
    fail = {"id": "a", "action": "util.fail",
            "with": {"retryable": True, "succeed_on_attempt": 2},
            "retry": {"attempts": 3, "backoff": "10s", "jitter": False}}  # fmt: skip
    run = start(definition(fail))
    inline_dispatch.drain()
    unit = units(run)["a"]
    assert unit.status == "retry_wait"
    assert sweep().retries_fired == 0  # not due yet
    time_machine.move_to(timezone.now() + timedelta(seconds=11))
    assert sweep().retries_fired == 1
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    keys = set(Attempt.objects.filter(unit__run=run).values_list("idempotency_key", flat=True))
    assert len(keys) == 1
    assert Attempt.objects.filter(unit__run=run).count() == 2


def test_a_queued_unit_whose_message_was_lost_is_sent_again(
    inline_dispatch: InlineDispatcher, settings
) -> None:
    settings.BULWARK_REDISPATCH_SECONDS = 5
    run = start(definition(echo("a")))
    inline_dispatch.pending.clear()  # the broker lost it
    StepRun.objects.filter(run=run).update(queued_at=timezone.now() - timedelta(seconds=6))
    assert sweep().redispatched == 1
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_the_worker_name_identifies_host_process_and_thread() -> None:
    assert worker_name().count(":") >= 3


def test_a_result_recorded_while_the_run_is_busy_is_applied_by_the_next_advance(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import execution
    from core.transitions import RunBusy

    real_apply = execution.apply_event

    def busy_first(*args, **kwargs):
        if kwargs.get("own_results"):  # the fast path finds the run locked
            raise RunBusy(args[0])
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(execution, "apply_event", busy_first)
    run = start(definition(echo("a"), echo("b"), echo("c", "a", "b")))
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert not StepRun.objects.filter(run=run, result__isnull=False).exists()
    kinds = list(AuditEvent.objects.filter(run_id=run.pk).values_list("kind", flat=True))
    assert kinds.count("attempt.succeeded") == 3


def test_a_result_stranded_by_a_dead_worker_is_applied_by_the_scheduler(
    inline_dispatch: InlineDispatcher,
) -> None:
    from core.attempt_results import AttemptResult

    run = start(definition(echo("a"), echo("b", "a")))
    unit_id, token = inline_dispatch.pending.popleft()
    claimed = claim_unit(unit_id, token, worker="dies-after-recording")
    result = AttemptResult(attempt=claimed.attempt, worker="dies-after-recording",
                           started_at=claimed.started_at.isoformat(), idempotency_key=claimed.idempotency_key,
                           action="util.echo", duration_ms=1.0, output={"message": "a"})  # fmt: skip
    StepRun.objects.filter(pk=unit_id).update(result=result.as_json())
    assert sweep().results_applied == 0  # its lease has not run out: the worker may still apply it
    expire_lease(unit_id)
    assert sweep().results_applied == 1
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert StepRun.objects.get(pk=unit_id).attempts == 1


def test_an_output_that_is_not_json_fails_the_step_clearly(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import execution

    monkeypatch.setattr(execution, "invoke", lambda spec, ctx, inputs: {"when": timezone.now()})
    run = start(definition(echo("a")))
    inline_dispatch.drain()
    unit = units(run)["a"]
    assert unit.status == "failed"
    assert unit.error["kind"] == "output_not_json"


def test_nul_characters_in_an_output_are_replaced_so_the_result_can_be_stored(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import execution

    monkeypatch.setattr(execution, "invoke", lambda spec, ctx, inputs: {"message": "bad\x00byte"})
    run = start(definition(echo("a")))
    inline_dispatch.drain()
    unit = units(run)["a"]
    assert unit.status == "succeeded"
    assert unit.output["message"] == "bad\ufffdbyte"


def test_a_draft_version_cannot_be_run(inline_dispatch: InlineDispatcher) -> None:
    from core.runs import RunRefused
    from playbooks.models import PlaybookVersion

    version = published_version(definition(echo("a")))
    PlaybookVersion.objects.filter(pk=version.pk).update(state="draft")
    with pytest.raises(RunRefused, match="draft"):
        start_run(playbook=version.playbook, version=version.number, actor="user:bob")


def test_the_holder_of_a_busy_run_applies_results_recorded_meanwhile(
    inline_dispatch: InlineDispatcher,
) -> None:
    from core.attempt_results import AttemptResult
    from core.engine.events import RetryDue
    from core.engine.state import UnitKey
    from core.transitions import apply_event

    run = start(definition(echo("a"), echo("b", "a")))
    unit_id, token = inline_dispatch.pending.popleft()
    claimed = claim_unit(unit_id, token, worker="w")
    result = AttemptResult(attempt=claimed.attempt, worker="w", started_at=claimed.started_at.isoformat(),
                           idempotency_key=claimed.idempotency_key, action="util.echo", duration_ms=1.0,
                           output={"message": "a"})  # fmt: skip

    def record_while_locked(run_obj, plan, decision, messages):  # type: ignore[no-untyped-def]
        # A worker that found the run locked records its result and leaves.
        StepRun.objects.filter(pk=unit_id).update(result=result.as_json())
        return list(messages.values()), []

    # Any transition of the run (here a retry timer for a unit not waiting: a no-op).
    apply_event(run.pk, RetryDue(UnitKey("b")), actor="holder", before_commit=record_while_locked)
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_queued_units_are_not_sent_again_while_the_broker_has_a_backlog(
    inline_dispatch: InlineDispatcher, settings
) -> None:
    settings.BULWARK_REDISPATCH_SECONDS = 5
    run = start(definition(echo("a"), echo("b")))
    inline_dispatch.pending.popleft()  # a's message was lost; b's still waits in the queue
    StepRun.objects.filter(run=run).update(queued_at=timezone.now() - timedelta(seconds=6))
    assert sweep().redispatched == 0
    inline_dispatch.pending.clear()  # the backlog drained, and a's message never came
    assert sweep().redispatched == 2


def test_a_write_expecting_no_recorded_result_does_not_overwrite_one(
    inline_dispatch: InlineDispatcher,
) -> None:
    from core.fast_sql import update_unit

    start(definition(echo("a")))
    unit_id, token = inline_dispatch.pending.popleft()
    claimed = claim_unit(unit_id, token, worker="w")
    StepRun.objects.filter(pk=unit_id).update(
        result={"attempt": claimed.attempt}
    )  # recorded meanwhile
    requeue = {"status": "queued", "result": None}
    assert (
        update_unit(
            unit_id, expect_status="running", expect_attempts=1, expect_result=False, fields=requeue
        )
        == 0
    )
    assert StepRun.objects.get(pk=unit_id).result == {"attempt": claimed.attempt}


def test_one_failing_run_does_not_stop_the_scheduler_sweeping_the_others(
    inline_dispatch: InlineDispatcher, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    from core import reconciler

    settings.BULWARK_REDISPATCH_SECONDS = 5
    start(definition(echo("a", retry={"attempts": 2})))  # its lease recovery will fail
    healthy = start(definition(echo("b"), name="healthy"))
    broken_unit, broken_token = inline_dispatch.pending.popleft()
    claim_unit(broken_unit, broken_token, worker="gone")
    expire_lease(broken_unit)
    inline_dispatch.pending.clear()  # the healthy run's message was lost too
    StepRun.objects.filter(run=healthy).update(queued_at=timezone.now() - timedelta(seconds=6))

    def explode(run_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"run {run_id} is broken")

    monkeypatch.setattr(reconciler, "apply_event", explode)
    result = sweep()
    assert result.errors
    assert result.redispatched == 1  # the sweep went on to the healthy run


def test_a_running_for_each_step_is_never_taken_for_a_lost_attempt(
    inline_dispatch: InlineDispatcher,
) -> None:
    fan = {"id": "fan", "action": "http.request", "for_each": "{{ [1, 2] }}",
           "with": {"method": "GET", "url": "http://example.invalid/{{ item }}"}}  # fmt: skip
    run = start(definition(fan))
    parent = StepRun.objects.get(run=run, step_id="fan", item_index=-1)
    assert (parent.status, parent.lease_expires_at) == ("running", None)  # waits for its items
    swept = sweep()
    assert (swept.leases_recovered, swept.errors) == (0, [])
    parent.refresh_from_db()
    assert (parent.status, parent.attempts) == ("running", 0)
    assert not Attempt.objects.filter(unit=parent).exists()
