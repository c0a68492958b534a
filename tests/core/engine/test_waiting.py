"""Asynchronous actions in the engine core: a unit parked between polls."""

from __future__ import annotations

from core.engine.events import Cancel, RetryStep
from core.engine.state import RunStatus, UnitKey, UnitStatus
from tests.core.engine.harness import Rehearsal, echo, steps

A = UnitKey("a")


def polled(sim: Rehearsal, progress: dict, after: float = 10.0) -> None:
    sim.claim(A)
    sim.finish(A, ("wait", (after, progress)))


def test_a_unit_that_asks_to_be_polled_waits_with_its_progress_until_its_timer() -> None:
    sim = Rehearsal.of(steps(echo("a"), echo("b", "a"))).start()
    polled(sim, {"action_id": "x1"})
    unit = sim.state.units[A]
    assert unit.status == UnitStatus.WAITING
    assert unit.progress == {"action_id": "x1"}
    assert unit.next_attempt_at == sim.now + 10.0
    assert sim.queued() == []
    assert ("step.waiting", "a") in sim.facts
    assert sim.tick()
    assert sim.queued() == [A]
    assert ("step.polling", "a") in sim.facts


def test_polls_do_not_use_up_the_steps_attempts() -> None:
    sim = Rehearsal.of(steps(echo("a", retry={"attempts": 2}), echo("b", "a"))).start()
    for n in range(5):
        polled(sim, {"poll": n})
        sim.tick()
    sim.claim(A)
    sim.finish(A, ("transient", "vendor 503"))
    assert sim.status("a") == UnitStatus.RETRY_WAIT  # a retry is still left
    assert sim.state.units[A].progress == {"poll": 4}  # and the next attempt resumes polling
    sim.tick()
    sim.claim(A)
    sim.finish(A, ("ok", {"done": True}))
    sim.run()
    assert sim.state.status == RunStatus.SUCCEEDED
    assert sim.state.units[A].attempts == 7


def test_cancelling_a_run_cancels_a_waiting_unit() -> None:
    sim = Rehearsal.of(steps(echo("a"))).start()
    polled(sim, {"action_id": "x1"})
    sim.apply(Cancel())
    assert sim.status("a") == UnitStatus.CANCELLED
    assert sim.state.status == RunStatus.CANCELLED
    assert not sim.tick()


def test_an_operator_retry_starts_afresh_without_the_old_progress() -> None:
    sim = Rehearsal.of(steps(echo("a"))).start()
    polled(sim, {"action_id": "x1"})
    sim.tick()
    sim.claim(A)
    sim.finish(A, ("permanent", "the vendor action failed"))
    assert sim.state.status == RunStatus.FAILED
    sim.apply(RetryStep("a"))
    assert sim.state.units[A].progress is None
    assert sim.queued() == [A]


def test_a_poll_interval_is_bounded() -> None:
    sim = Rehearsal.of(steps(echo("a"))).start()
    polled(sim, {}, after=10**9)
    assert sim.state.units[A].next_attempt_at == sim.now + 3600.0


def test_an_unsafe_action_that_kept_progress_is_resumed_when_its_attempt_is_lost() -> None:
    from core.engine.events import UnitLost

    sim = Rehearsal.of(
        steps(echo("a", retry={"attempts": 3})), unsafe=frozenset({"util.echo"})
    ).start()
    polled(sim, {"job": 101})  # the job was launched and its id kept
    sim.tick()
    sim.claim(A)
    sim.apply(UnitLost(A))  # the worker died while polling
    assert sim.status("a") == UnitStatus.QUEUED
    assert sim.state.units[A].progress == {"job": 101}


def test_an_unsafe_action_without_progress_waits_for_a_person_when_lost() -> None:
    from core.engine.events import UnitLost

    sim = Rehearsal.of(
        steps(echo("a", retry={"attempts": 3})), unsafe=frozenset({"util.echo"})
    ).start()
    sim.claim(A)
    sim.apply(UnitLost(A))
    assert sim.status("a") == UnitStatus.NEEDS_ATTENTION
