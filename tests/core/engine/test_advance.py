"""The engine core, one behaviour a test, with no database."""

from __future__ import annotations

import pytest

from core.engine.advance import EngineError
from core.engine.events import Cancel, RetryStep, UnitLost
from core.engine.state import RunStatus, UnitKey, UnitStatus
from tests.core.engine.harness import Rehearsal, echo, steps


def fails_at(*step_ids: str, kind: str = "permanent"):
    def script(key: UnitKey, attempt: int):
        return (
            (kind, "boom")
            if key.step in step_ids and key.phase == "main"
            else ("ok", {"step": key.step})
        )

    return script


def test_steps_without_needs_start_at_once_and_in_parallel() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b"), echo("c", "a", "b"))).start()
    assert sim.queued() == [UnitKey("a"), UnitKey("b")]
    assert sim.status("c") == UnitStatus.PENDING


def test_fan_in_waits_for_every_need() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b"), echo("c", "a", "b"))).start()
    sim.claim(UnitKey("a"))
    sim.finish(UnitKey("a"), ("ok", 1))
    assert sim.status("c") == UnitStatus.PENDING
    sim.claim(UnitKey("b"))
    sim.finish(UnitKey("b"), ("ok", 2))
    assert sim.queued() == [UnitKey("c")]


def test_a_sequential_run_succeeds_in_order() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b", "a"), echo("c", "b"))).start()
    state = sim.run()
    assert state.status == RunStatus.SUCCEEDED
    assert [k.step for k in sim.claims] == ["a", "b", "c"]


def test_templates_see_upstream_outputs_and_keep_json_types() -> None:
    definition = steps(
        {
            "id": "a",
            "action": "util.echo",
            "with": {"message": "x", "data": {"hosts": ["h1", "h2"]}},
        },
        {
            "id": "b",
            "action": "util.echo",
            "needs": ["a"],
            "with": {"data": {"n": "{{ steps.a.output.data.hosts }}"}},
        },
    )
    sim = Rehearsal.of(definition).start()
    sim.run(lambda key, attempt: ("ok", {"data": {"hosts": ["h1", "h2"]}}))
    assert sim.state.units[UnitKey("b")].inputs == {"data": {"n": ["h1", "h2"]}}


def test_a_false_condition_skips_the_step_and_its_dependents() -> None:
    definition = steps(
        echo("a"), echo("b", "a", **{"if": "inputs.go"}), echo("c", "b"), echo("d", "a")
    )
    sim = Rehearsal.of(definition, inputs={"go": False}).start()
    state = sim.run()
    assert sim.status("b") == UnitStatus.SKIPPED
    assert sim.status("c") == UnitStatus.SKIPPED
    assert sim.status("d") == UnitStatus.SUCCEEDED
    assert state.status == RunStatus.SUCCEEDED


def test_always_runs_after_a_failure_and_failed_sees_an_ancestor_failure() -> None:
    definition = steps(
        echo("a"),
        echo("b", "a"),
        echo("cleanup", "b", **{"if": "always()"}),
        echo("alarm", "b", **{"if": "failed()"}),
        echo("happy", "b", **{"if": "succeeded()"}),
    )
    sim = Rehearsal.of(definition).start()
    state = sim.run(fails_at("a"))
    assert sim.status("b") == UnitStatus.SKIPPED
    assert sim.status("cleanup") == UnitStatus.SUCCEEDED
    assert sim.status("alarm") == UnitStatus.SUCCEEDED
    assert sim.status("happy") == UnitStatus.SKIPPED
    assert state.status == RunStatus.FAILED


def test_on_failure_stop_starts_no_independent_branch_after_a_failure() -> None:
    definition = steps(echo("a"), echo("b", "a"), echo("slow"), echo("after_slow", "slow"))
    sim = Rehearsal.of(definition).start()
    sim.claim(UnitKey("a"))
    sim.finish(UnitKey("a"), ("permanent", "no"))
    sim.claim(UnitKey("slow"))
    sim.finish(UnitKey("slow"), ("ok", 1))
    assert sim.status("after_slow") == UnitStatus.SKIPPED
    assert sim.state.status == RunStatus.FAILED


def test_on_failure_continue_lets_independent_branches_finish() -> None:
    definition = steps(
        echo("a"), echo("b", "a"), echo("slow"), echo("after_slow", "slow"), on_failure="continue"
    )
    sim = Rehearsal.of(definition).start()
    state = sim.run(fails_at("a"))
    assert sim.status("after_slow") == UnitStatus.SUCCEEDED
    assert sim.status("b") == UnitStatus.SKIPPED
    assert state.status == RunStatus.FAILED


def test_transient_errors_retry_with_backoff_until_attempts_run_out() -> None:
    definition = steps(
        echo("a", retry={"attempts": 3, "backoff": "2s", "max_backoff": "1m", "jitter": False})
    )
    sim = Rehearsal.of(definition).start()
    start = sim.now
    state = sim.run(fails_at("a", kind="transient"))
    unit = state.units[UnitKey("a")]
    assert unit.attempts == 3
    assert unit.status == UnitStatus.FAILED
    assert sim.now - start == pytest.approx(2 + 4)
    assert [k for k, _ in sim.facts].count("step.retry_scheduled") == 2


def test_permanent_errors_fail_at_once() -> None:
    sim = Rehearsal.of(steps(echo("a", retry={"attempts": 5}))).start()
    state = sim.run(fails_at("a"))
    assert state.units[UnitKey("a")].attempts == 1
    assert state.status == RunStatus.FAILED


def test_retry_after_wins_over_a_shorter_backoff() -> None:
    from core.engine.events import UnitFailed
    from core.engine.state import ErrorInfo

    sim = Rehearsal.of(
        steps(echo("a", retry={"attempts": 2, "backoff": "1s", "jitter": False}))
    ).start()
    sim.claim(UnitKey("a"))
    sim.apply(
        UnitFailed(
            UnitKey("a"), ErrorInfo("429", kind="http_status", retryable=True, retry_after=7)
        )
    )
    assert sim.state.units[UnitKey("a")].next_attempt_at == pytest.approx(sim.now + 7)


def test_for_each_runs_one_unit_per_item_within_max_parallel() -> None:
    definition = steps(
        echo("a"),
        {
            "id": "fan",
            "action": "util.echo",
            "needs": ["a"],
            "for_each": "{{ inputs.hosts }}",
            "max_parallel": 2,
            "with": {"message": "{{ item }}"},
        },
        echo("z", "fan"),
    )
    sim = Rehearsal.of(definition, inputs={"hosts": ["h1", "h2", "h3", "h4", "h5"]}).start()
    sim.claim(UnitKey("a"))
    sim.finish(UnitKey("a"), ("ok", None))
    assert sim.queued() == [UnitKey("fan", 0), UnitKey("fan", 1)]
    state = sim.run(lambda key, attempt: ("ok", (sim.state.units[key].inputs or {}).get("message")))
    assert state.status == RunStatus.SUCCEEDED
    assert state.units[UnitKey("fan")].output == ["h1", "h2", "h3", "h4", "h5"]


def test_for_each_over_an_empty_list_succeeds_with_no_items() -> None:
    definition = steps(
        {"id": "fan", "action": "util.echo", "for_each": "{{ inputs.hosts }}"}, echo("z", "fan")
    )
    state = Rehearsal.of(definition, inputs={"hosts": []}).start().run()
    assert state.units[UnitKey("fan")].output == []
    assert state.status == RunStatus.SUCCEEDED


def test_a_for_each_that_is_not_a_list_fails_the_step_naming_it() -> None:
    definition = steps({"id": "fan", "action": "util.echo", "for_each": "{{ inputs.hosts }}"})
    state = Rehearsal.of(definition, inputs={"hosts": "h1"}).start().run()
    assert state.units[UnitKey("fan")].status == UnitStatus.FAILED
    assert "steps.fan.for_each" in state.units[UnitKey("fan")].error["message"]


def test_a_template_error_fails_the_step_and_names_the_field() -> None:
    definition = steps({"id": "a", "action": "util.echo", "with": {"message": "{{ inputs.nope }}"}})
    state = Rehearsal.of(definition).start().run()
    error = state.units[UnitKey("a")].error
    assert state.status == RunStatus.FAILED
    assert "steps.a.with.message" in error["message"]


def test_compensation_runs_for_succeeded_steps_in_reverse_order_of_completion() -> None:
    undo = {"action": "util.echo", "with": {"message": "undo"}}
    definition = steps(
        echo("a", compensate=undo),
        echo("b", "a", compensate=undo),
        echo("c", "a", compensate=undo),
        echo("d", "b", "c"),
        on_failure="compensate",
    )
    sim = Rehearsal.of(definition).start()
    sim.claim(UnitKey("a"))
    sim.finish(UnitKey("a"), ("ok", 1))
    sim.claim(UnitKey("c"))
    sim.finish(UnitKey("c"), ("ok", 1))
    sim.claim(UnitKey("b"))
    sim.finish(UnitKey("b"), ("ok", 1))
    sim.claim(UnitKey("d"))
    sim.finish(UnitKey("d"), ("permanent", "boom"))
    assert sim.state.status == RunStatus.COMPENSATING
    state = sim.run()
    compensations = [k.step for k in sim.claims if k.phase == "compensate"]
    assert compensations == ["b", "c", "a"]
    assert state.status == RunStatus.COMPENSATED


def test_a_failed_compensation_leaves_the_run_failed() -> None:
    definition = steps(
        echo("a", compensate={"action": "util.echo", "with": {}}),
        echo("b", "a"),
        on_failure="compensate",
    )

    def script(key: UnitKey, attempt: int):
        return ("permanent", "no") if key.step == "b" or key.phase == "compensate" else ("ok", 1)

    state = Rehearsal.of(definition).start().run(script)
    assert state.status == RunStatus.FAILED
    assert state.units[UnitKey("a", -1, "compensate")].status == UnitStatus.FAILED


def test_a_lost_attempt_is_queued_again_while_attempts_remain() -> None:
    sim = Rehearsal.of(steps(echo("a", retry={"attempts": 2}))).start()
    sim.claim(UnitKey("a"))
    sim.apply(UnitLost(UnitKey("a")))
    assert sim.queued() == [UnitKey("a")]
    sim.claim(UnitKey("a"))
    sim.finish(UnitKey("a"), ("ok", 1))
    assert sim.state.status == RunStatus.SUCCEEDED


def test_a_step_that_keeps_killing_its_worker_needs_attention_after_its_attempts() -> None:
    sim = Rehearsal.of(steps(echo("a", retry={"attempts": 3}), echo("b", "a"))).start()
    state = sim.run(lambda key, attempt: ("lost", None))
    assert state.units[UnitKey("a")].attempts == 3
    assert state.units[UnitKey("a")].status == UnitStatus.NEEDS_ATTENTION
    assert state.status == RunStatus.NEEDS_ATTENTION
    assert sim.status("b") == UnitStatus.PENDING


def test_a_lost_write_without_idempotency_waits_as_ambiguous() -> None:
    definition = steps({"id": "a", "action": "vendor.write", "retry": {"attempts": 5}})
    sim = Rehearsal.of(definition, unsafe=frozenset({"vendor.write"})).start()
    sim.claim(UnitKey("a"))
    sim.apply(UnitLost(UnitKey("a")))
    unit = sim.state.units[UnitKey("a")]
    assert unit.status == UnitStatus.NEEDS_ATTENTION
    assert unit.error["kind"] == "ambiguous"


def test_cancel_marks_pending_and_queued_units_cancelled_and_waits_for_running_ones() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b"), echo("c", "a"))).start()
    sim.claim(UnitKey("a"))
    sim.apply(Cancel())
    assert sim.status("b") == UnitStatus.CANCELLED
    assert sim.status("c") == UnitStatus.CANCELLED
    assert sim.state.status == RunStatus.CANCELLING
    sim.finish(UnitKey("a"), ("ok", 1))
    assert sim.status("a") == UnitStatus.SUCCEEDED
    assert sim.state.status == RunStatus.CANCELLED
    assert sim.queued() == []


def test_cancelling_a_finished_run_is_refused() -> None:
    sim = Rehearsal.of(steps(echo("a"))).start()
    sim.run()
    with pytest.raises(EngineError, match="already succeeded"):
        sim.apply(Cancel())


def test_retrying_a_failed_step_reruns_it_and_what_it_skipped_with_a_new_attempt_group() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b", "a"), echo("c", "b"))).start()
    sim.run(fails_at("b"))
    assert sim.state.status == RunStatus.FAILED
    group = sim.state.units[UnitKey("b")].attempt_group
    sim.apply(RetryStep("b"))
    assert sim.state.status == RunStatus.RUNNING
    assert sim.state.units[UnitKey("b")].attempt_group == group + 1
    state = sim.run()
    assert state.status == RunStatus.SUCCEEDED
    assert [k.step for k in sim.claims].count("a") == 1


def test_retrying_a_step_that_did_not_fail_is_refused() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b", "a"))).start()
    sim.run(fails_at("b"))
    with pytest.raises(EngineError, match="only a failed step"):
        sim.apply(RetryStep("a"))


def test_retrying_a_failed_for_each_keeps_its_succeeded_items() -> None:
    definition = steps(
        {
            "id": "fan",
            "action": "util.echo",
            "for_each": "{{ inputs.hosts }}",
            "with": {"message": "{{ item }}"},
            "retry": {"attempts": 1},
        }
    )
    sim = Rehearsal.of(
        definition,
        inputs={"hosts": ["h1", "h2"]},
    ).start()
    sim.run(lambda key, attempt: ("permanent", "x") if key.item == 1 else ("ok", key.item))
    assert sim.state.status == RunStatus.FAILED
    sim.apply(RetryStep("fan"))
    state = sim.run()
    assert state.status == RunStatus.SUCCEEDED
    assert [k for k in sim.claims if k.item == 0] == [UnitKey("fan", 0)]


def test_a_run_whose_compensation_ran_refuses_step_retries() -> None:
    definition = steps(
        echo("a", compensate={"action": "util.echo", "with": {}}),
        echo("b", "a"),
        on_failure="compensate",
    )
    sim = Rehearsal.of(definition).start()
    sim.run(
        lambda key, attempt: (
            ("permanent", "no") if key.step == "b" or key.phase == "compensate" else ("ok", 1)
        )
    )
    assert sim.state.status == RunStatus.FAILED
    with pytest.raises(EngineError, match="compensation has run"):
        sim.apply(RetryStep("b"))


def test_on_failure_stop_also_stops_feeding_a_for_each_when_another_branch_fails() -> None:
    definition = steps(
        echo("bad"),
        {"id": "fan", "action": "util.echo", "for_each": "{{ inputs.hosts }}", "max_parallel": 1,
         "with": {"message": "{{ item }}"}},
    )  # fmt: skip
    sim = Rehearsal.of(definition, inputs={"hosts": ["h1", "h2", "h3"]}).start()
    sim.claim(UnitKey("bad"))
    sim.finish(UnitKey("bad"), ("permanent", "no"))
    sim.run()
    assert [k for k in sim.claims if k.step == "fan"] == [UnitKey("fan", 0)]
    assert sim.status("fan[1]") == UnitStatus.SKIPPED
    assert sim.state.status == RunStatus.FAILED


def test_retrying_one_of_two_failed_steps_in_a_stopped_run_resumes_both() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b"), echo("c", "a", "b"))).start()
    sim.run(lambda key, attempt: ("permanent", "no") if attempt == 1 else ("ok", 1))
    assert (sim.status("a"), sim.status("b")) == (UnitStatus.FAILED, UnitStatus.FAILED)
    sim.apply(RetryStep("a"))
    state = sim.run(lambda key, attempt: ("ok", 1))
    assert state.status == RunStatus.SUCCEEDED


def test_a_for_each_rendered_again_shorter_skips_its_left_over_items() -> None:
    fan = {"id": "fan", "action": "util.echo", "needs": ["x"], "if": "always()",
           "for_each": "{{ [1, 2, 3] if steps.x.status == 'failed' else [1] }}",
           "with": {"message": "{{ item }}"}, "retry": {"attempts": 1}}  # fmt: skip
    sim = Rehearsal.of(steps(echo("x", retry={"attempts": 1}), fan, on_failure="continue")).start()
    sim.run(lambda key, attempt: ("permanent", "no"))  # x fails; fan runs 3 items, all fail
    assert sim.state.units[UnitKey("fan")].items_total == 3
    sim.apply(RetryStep("x"))
    sim.run(lambda key, attempt: ("ok", 1) if key.step == "x" else ("permanent", "no"))
    assert sim.state.units[UnitKey("fan")].items_total == 1
    assert sim.status("fan[2]") == UnitStatus.SKIPPED
    sim.apply(RetryStep("fan"))
    state = sim.run(lambda key, attempt: ("ok", 1))
    assert [k.item for k in sim.claims if k.step == "fan"][-1] == 0
    assert state.status == RunStatus.SUCCEEDED


def test_a_lost_response_of_an_unsafe_write_waits_as_ambiguous_instead_of_retrying() -> None:
    from core.engine.events import UnitFailed
    from core.engine.state import ErrorInfo

    definition = steps({"id": "a", "action": "vendor.write", "retry": {"attempts": 5}})
    sim = Rehearsal.of(definition, unsafe=frozenset({"vendor.write"})).start()
    sim.claim(UnitKey("a"))
    lost = ErrorInfo("read timed out", kind="timeout", retryable=True, request_sent=True)
    sim.apply(UnitFailed(UnitKey("a"), lost))
    unit = sim.state.units[UnitKey("a")]
    assert (unit.status, unit.error["kind"]) == (UnitStatus.NEEDS_ATTENTION, "ambiguous")


def test_after_an_operator_retry_the_backoff_starts_again_from_the_first_delay() -> None:
    from core.engine.events import UnitFailed
    from core.engine.state import ErrorInfo

    definition = steps(
        echo("a", retry={"attempts": 2, "backoff": "1s", "max_backoff": "1h", "jitter": False})
    )
    sim = Rehearsal.of(definition).start()
    sim.run(lambda key, attempt: ("transient", "x"))
    sim.apply(RetryStep("a"))
    sim.claim(UnitKey("a"))
    sim.apply(UnitFailed(UnitKey("a"), ErrorInfo("x", kind="transient", retryable=True)))
    assert sim.state.units[UnitKey("a")].next_attempt_at == pytest.approx(sim.now + 1)


def test_a_for_each_step_waiting_for_its_items_cannot_be_lost() -> None:
    definition = steps(
        {"id": "fan", "action": "util.echo", "for_each": "{{ [1, 2] }}", "with": {"message": 1}}
    )
    sim = Rehearsal.of(definition).start()
    assert sim.status("fan") == UnitStatus.RUNNING
    with pytest.raises(EngineError, match="a for_each step, which runs no action"):
        sim.apply(UnitLost(UnitKey("fan")))
