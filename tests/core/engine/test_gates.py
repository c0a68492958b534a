"""Approval gates in the pure engine: quorum, timeouts, escalation, binding, budgets."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine.advance import EngineError
from core.engine.events import Cancel, RetryDue, RetryStep, UnitHeld, Vote
from core.engine.gates import inputs_hash
from core.engine.state import RunStatus, UnitKey, UnitStatus
from tests.core.engine.harness import Rehearsal, echo, steps

GATE = UnitKey("gate")
CONTAIN = "crowdstrike.contain_host"
DESTRUCTIVE = frozenset({CONTAIN})


def gate(*needs: str, **approval: Any) -> dict[str, Any]:
    return {
        "id": "gate",
        "needs": list(needs),
        "approval": {"approvers": ["ic"], **approval},
    }


def isolate(*needs: str, host: str = "{{ inputs.host }}") -> dict[str, Any]:
    return {"id": "isolate", "needs": list(needs), "action": CONTAIN, "with": {"device_id": host}}


def contain_playbook(**approval: Any) -> Rehearsal:
    definition = steps(
        echo("enrich"), gate("enrich", **approval), isolate("gate"), echo("notify", "isolate")
    )
    sim = Rehearsal.of(definition, inputs={"host": "aid-1"}, destructive=DESTRUCTIVE)
    return sim.start()


def work(sim: Rehearsal) -> None:
    """Run what is queued, without moving the clock (`lookup` finds host aid-9)."""
    while queued := sim.queued():
        key = queued[0]
        sim.claim(key)
        sim.finish(key, ("ok", {"host": "aid-9"} if key.step == "lookup" else {"step": key.step}))


def waiting(sim: Rehearsal) -> dict[str, Any]:
    work(sim)
    unit = sim.state.units[GATE]
    assert unit.status == UnitStatus.WAITING_APPROVAL
    assert sim.state.status == RunStatus.WAITING_APPROVAL
    return unit.progress


def vote(sim: Rehearsal, voter: str, approve: bool = True, request: int | None = None) -> None:
    number = request if request is not None else sim.state.units[GATE].progress["request"]
    sim.apply(Vote(GATE, number, f"user:{voter}", approve, comment=f"{voter} says so"))


def test_a_gate_waits_holding_nothing_and_shows_the_inputs_it_guards() -> None:
    sim = contain_playbook(message="Isolate {{ inputs.host }}?")
    progress = waiting(sim)
    assert sim.queued() == []
    assert progress["message"] == "Isolate aid-1?"
    assert progress["guarded"] == {"isolate": {"device_id": "aid-1"}}
    assert progress["bound_hash"] == inputs_hash({"isolate": {"device_id": "aid-1"}})
    assert progress["four_eyes"] is True  # default on: it guards a destructive step
    assert ("approval.requested", "gate") in sim.facts
    assert sim.status("isolate") == UnitStatus.PENDING


def test_two_of_three_quorum_needs_two_distinct_approvals() -> None:
    sim = contain_playbook(min_approvals=2)
    waiting(sim)
    vote(sim, "alice")
    assert sim.status("gate") == UnitStatus.WAITING_APPROVAL
    with pytest.raises(EngineError, match="approved request 1 already"):
        vote(sim, "alice")
    vote(sim, "bob")
    assert sim.status("gate") == UnitStatus.SUCCEEDED
    state = sim.run()
    assert state.status == RunStatus.SUCCEEDED
    assert state.units[GATE].output["approved_by"] == ["user:alice", "user:bob"]
    assert sim.status("isolate") == UnitStatus.SUCCEEDED


def test_one_rejection_rejects_and_skips_what_the_gate_guards() -> None:
    sim = contain_playbook(min_approvals=2)
    waiting(sim)
    vote(sim, "alice")
    vote(sim, "bob", approve=False)
    state = sim.run()
    assert sim.status("gate") == UnitStatus.REJECTED
    assert sim.status("isolate") == UnitStatus.SKIPPED
    assert state.units[UnitKey("isolate")].reason == "an approval it needs was rejected"
    assert state.status == RunStatus.SUCCEEDED
    with pytest.raises(EngineError, match="not waiting"):
        vote(sim, "carol")


def test_the_outcome_is_available_to_later_steps() -> None:
    definition = steps(
        gate(),
        echo("on_yes", "gate", **{"if": "steps.gate.outcome == 'approved'"}),
        echo("on_no", "gate", **{"if": "always() and steps.gate.outcome == 'rejected'"}),
    )
    sim = Rehearsal.of(definition).start()
    vote(sim, "alice", approve=False)
    sim.run()
    assert sim.status("on_yes") == UnitStatus.SKIPPED
    assert sim.status("on_no") == UnitStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("on_timeout", "outcome", "status"),
    [("reject", "rejected", UnitStatus.REJECTED), ("approve", "approved", UnitStatus.SUCCEEDED)],
)
def test_a_timeout_decides_as_on_timeout_says(
    on_timeout: str, outcome: str, status: UnitStatus
) -> None:
    sim = contain_playbook(timeout="30m", on_timeout=on_timeout)
    progress = waiting(sim)
    assert progress["deadline"] == sim.now + 1800
    sim.now += 1799
    sim.apply(RetryDue(GATE))  # woken early: nothing happens
    assert sim.status("gate") == UnitStatus.WAITING_APPROVAL
    sim.now += 1
    sim.apply(RetryDue(GATE))
    assert sim.status("gate") == status
    output = sim.state.units[GATE].output
    assert output["outcome"] == outcome
    assert output["timed_out"] is True
    assert ("approval.timed_out", "gate") in sim.facts


def test_a_timeout_escalates_rung_by_rung_then_rejects() -> None:
    sim = contain_playbook(
        timeout="10m",
        on_timeout="escalate",
        escalate_to=[{"approvers": ["soc-lead"]}, {"approvers": ["ciso"], "timeout": "1h"}],
    )
    waiting(sim)
    sim.tick()
    progress = sim.state.units[GATE].progress
    assert progress["approvers"] == ["soc-lead"]
    assert progress["rung"] == 1
    assert progress["deadline"] == sim.now + 600  # the gate's timeout, by default
    sim.tick()
    progress = sim.state.units[GATE].progress
    assert progress["approvers"] == ["ciso"]
    assert progress["deadline"] == sim.now + 3600
    assert [f for f in sim.facts if f[0] == "approval.escalated"] == [
        ("approval.escalated", "gate")
    ] * 2
    sim.tick()
    assert sim.status("gate") == UnitStatus.REJECTED
    assert sim.state.units[GATE].output["timed_out"] is True


def test_an_escalated_request_still_counts_earlier_approvals() -> None:
    sim = contain_playbook(
        min_approvals=2, timeout="10m", on_timeout="escalate", escalate_to=[{"approvers": ["lead"]}]
    )
    waiting(sim)
    vote(sim, "alice")
    sim.tick()
    vote(sim, "lead1")
    assert sim.status("gate") == UnitStatus.SUCCEEDED


def test_reminders_repeat_until_the_deadline() -> None:
    sim = contain_playbook(timeout="1h", remind_every="20m")
    waiting(sim)
    for _ in range(2):
        sim.tick()
    reminders = [f for f in sim.facts if f[0] == "approval.reminder"]
    assert len(reminders) == 2
    assert sim.state.units[GATE].progress["reminders"] == 2
    sim.tick()  # the third wake-up at 60 minutes is the deadline, not a reminder
    assert sim.status("gate") == UnitStatus.REJECTED


def test_a_vote_on_a_superseded_request_is_refused() -> None:
    sim = contain_playbook()
    waiting(sim)
    with pytest.raises(EngineError, match="request 7 of gate is no longer open"):
        vote(sim, "alice", request=7)


def test_inputs_that_changed_since_the_approval_make_the_step_ask_again() -> None:
    # The host is only known after the gate (from a step that runs in parallel with it).
    definition = steps(
        echo("lookup"),
        gate(),
        isolate("gate", "lookup", host="{{ steps.lookup.output.host }}"),
    )
    sim = Rehearsal.of(definition, destructive=DESTRUCTIVE).start()
    first = sim.state.units[GATE].progress
    assert "unresolved" in first["guarded"]["isolate"]
    vote(sim, "alice")
    work(sim)
    # Approved for what could not be resolved: the step asks again, for the real host.
    key = UnitKey("isolate")
    assert sim.status("gate") == UnitStatus.SUCCEEDED  # its decision stands
    assert sim.status("isolate") == UnitStatus.WAITING_APPROVAL
    again = sim.state.units[key].progress
    assert (again["gate"], again["request"], again["approvers"]) == ("gate", 1, ["ic"])
    assert again["guarded"] == {"isolate": {"device_id": "aid-9"}}
    assert sim.state.status == RunStatus.WAITING_APPROVAL
    with pytest.raises(EngineError, match="request 5 of isolate is no longer open"):
        sim.apply(Vote(key, 5, "user:bob", True))
    sim.apply(Vote(key, 1, "user:bob", True))
    work(sim)
    assert sim.status("isolate") == UnitStatus.SUCCEEDED
    assert sim.state.units[key].inputs == {"device_id": "aid-9"}
    assert sim.state.units[key].progress is None  # the action never sees the approval


def test_unchanged_inputs_run_on_the_first_approval() -> None:
    sim = contain_playbook()
    waiting(sim)
    vote(sim, "alice")
    sim.run()
    assert [f for f in sim.facts if f[0] == "approval.requested"] == [
        ("approval.requested", "gate")
    ]


def test_a_gate_guards_only_destructive_steps_up_to_the_next_gate() -> None:
    second_gate = {"id": "gate2", "needs": ["isolate"], "approval": {"approvers": ["ic"]}}
    patch = {"id": "patch", "needs": ["gate2"], "action": CONTAIN, "with": {"device_id": "x"}}
    definition = steps(gate(), isolate("gate"), echo("note", "gate"), second_gate, patch)
    sim = Rehearsal.of(definition, inputs={"host": "h"}, destructive=DESTRUCTIVE)
    assert sim.plan.guards == {"gate": ("isolate",), "gate2": ("patch",)}


def test_a_gate_that_guards_nothing_has_four_eyes_off_unless_asked() -> None:
    sim = Rehearsal.of(steps(gate(), echo("b", "gate"))).start()
    assert sim.state.units[GATE].progress["four_eyes"] is False
    sim = Rehearsal.of(steps(gate(four_eyes=True), echo("b", "gate"))).start()
    assert sim.state.units[GATE].progress["four_eyes"] is True


def test_cancelling_withdraws_a_waiting_request() -> None:
    sim = contain_playbook()
    waiting(sim)
    sim.apply(Cancel())
    assert sim.status("gate") == UnitStatus.CANCELLED
    assert sim.state.status == RunStatus.CANCELLED
    assert ("approval.withdrawn", "gate") in sim.facts


def test_a_failure_elsewhere_withdraws_the_request() -> None:
    definition = steps(echo("boom"), gate(), echo("after", "gate", "boom"))
    sim = Rehearsal.of(definition).start()
    sim.run(lambda key, attempt: ("permanent", "no"))
    assert sim.status("gate") == UnitStatus.SKIPPED
    assert sim.state.status == RunStatus.FAILED


def test_a_budget_hold_waits_for_approval_then_acts() -> None:
    sim = Rehearsal.of(steps(isolate()), inputs={"host": "aid-1"}, destructive=DESTRUCTIVE).start()
    key = UnitKey("isolate")
    sim.claim(key)
    hold = {"action": CONTAIN, "limit": 20, "window_seconds": 3600, "used": 20,
            "approvers": ["approver"], "inputs": {"device_id": "aid-1"}, "message": "over budget"}  # fmt: skip
    sim.apply(UnitHeld(key, hold))
    unit = sim.state.units[key]
    assert unit.status == UnitStatus.WAITING_APPROVAL
    assert sim.state.status == RunStatus.WAITING_APPROVAL
    assert unit.progress["kind"] == "budget"
    assert unit.progress["four_eyes"] is True
    assert unit.max_attempts == 4  # the held claim did not use up an attempt
    assert ("budget.held", "isolate") in sim.facts
    sim.apply(Vote(key, unit.progress["request"], "user:alice", True))
    assert sim.queued() == [key]
    state = sim.run()
    assert state.status == RunStatus.SUCCEEDED


def test_a_rejected_budget_hold_does_not_act() -> None:
    sim = Rehearsal.of(steps(isolate(), echo("after", "isolate")), inputs={"host": "h"}).start()
    key = UnitKey("isolate")
    sim.claim(key)
    sim.apply(UnitHeld(key, {"action": CONTAIN, "approvers": ["approver"], "inputs": {}}))
    sim.apply(Vote(key, sim.state.units[key].progress["request"], "user:alice", False))
    state = sim.run()
    assert sim.status("isolate") == UnitStatus.REJECTED
    assert sim.status("after") == UnitStatus.SKIPPED
    assert state.status == RunStatus.SUCCEEDED


def indirect(sim_host: str = "{{ steps.lookup.output.host }}") -> Rehearsal:
    """gate → prepare → isolate, with the host from a step that runs beside the gate."""
    definition = steps(
        echo("lookup"),
        gate(),
        echo("prepare", "gate"),
        isolate("prepare", "lookup", host=sim_host),
    )
    return Rehearsal.of(definition, destructive=DESTRUCTIVE).start()


def test_a_step_after_its_gate_asks_again_and_a_rejection_stops_it() -> None:
    sim = indirect()
    assert sim.plan.guarded_by == {"isolate": "gate"}
    vote(sim, "alice")  # approved before lookup's host was known
    work(sim)
    assert sim.status("prepare") == UnitStatus.SUCCEEDED
    assert sim.status("isolate") == UnitStatus.WAITING_APPROVAL  # asked again
    assert sim.state.status == RunStatus.WAITING_APPROVAL
    key = UnitKey("isolate")
    sim.apply(Vote(key, 1, "user:bob", False))
    work(sim)
    assert sim.status("isolate") == UnitStatus.REJECTED
    assert sim.state.status == RunStatus.SUCCEEDED


def test_a_step_after_its_gate_acts_once_approved_again() -> None:
    sim = indirect()
    vote(sim, "alice")
    work(sim)
    sim.apply(Vote(UnitKey("isolate"), 1, "user:bob", True))
    work(sim)
    assert sim.status("isolate") == UnitStatus.SUCCEEDED
    assert sim.state.units[UnitKey("isolate")].inputs == {"device_id": "aid-9"}
    requests = [f for f in sim.facts if f[0] == "approval.requested"]
    assert len(requests) == 2


def test_a_step_that_asked_again_and_is_then_held_by_its_budget_gets_a_new_request_number() -> None:
    sim = indirect()
    vote(sim, "alice")
    work(sim)
    key = UnitKey("isolate")
    asked = sim.state.units[key].progress["request"]
    sim.apply(Vote(key, asked, "user:bob", True))
    (queued,) = sim.queued()
    sim.claim(queued)
    sim.apply(UnitHeld(key, {"action": CONTAIN, "approvers": ["approver"], "inputs": {}}))
    held = sim.state.units[key].progress["request"]
    assert (asked, held) == (1, 2)  # odd before a claim, even after one: never the same


def test_a_destructive_step_whose_gate_never_decided_does_not_act() -> None:
    # boom fails, so the gate after it is skipped; `relay` runs anyway (always()), and the
    # destructive step after relay must not take that as an approval.
    definition = steps(
        echo("boom"),
        gate("boom"),
        echo("relay", "gate", **{"if": "always()"}),
        isolate("relay"),
        on_failure="continue",
    )
    sim = Rehearsal.of(definition, inputs={"host": "h"}, destructive=DESTRUCTIVE).start()
    sim.run(lambda key, attempt: ("permanent", "no") if key.step == "boom" else ("ok", {}))
    assert sim.status("gate") == UnitStatus.SKIPPED
    assert sim.status("relay") == UnitStatus.SUCCEEDED
    assert sim.status("isolate") == UnitStatus.SKIPPED
    assert UnitKey("isolate") not in sim.claims


def test_request_numbers_never_repeat_on_a_unit_whatever_it_goes_through() -> None:
    definition = steps(
        echo("lookup"),
        echo("boom"),
        gate(),
        echo("prepare", "gate"),
        isolate("prepare", "lookup", host="{{ steps.lookup.output.host }}"),
    )
    sim = Rehearsal.of(definition, destructive=DESTRUCTIVE).start()
    vote(sim, "alice")  # before lookup's host is known

    def finish(step: str, result: tuple[str, Any]) -> None:
        sim.claim(UnitKey(step))
        sim.finish(UnitKey(step), result)

    finish("lookup", ("ok", {"host": "aid-9"}))
    finish("prepare", ("ok", {}))
    key = UnitKey("isolate")
    assert sim.state.units[key].progress["request"] == 1  # it asked again
    finish("boom", ("permanent", "no"))  # the run stops: the request is withdrawn
    assert sim.status("isolate") == UnitStatus.SKIPPED
    sim.apply(RetryStep("boom"))
    finish("boom", ("ok", {}))
    assert sim.status("isolate") == UnitStatus.WAITING_APPROVAL
    assert sim.state.units[key].progress["request"] == 2  # not 1 again


def test_a_held_item_of_a_fan_out_makes_the_run_wait_for_approval() -> None:
    fan = {"id": "isolate", "action": CONTAIN, "for_each": "{{ inputs.hosts }}",
           "with": {"device_id": "{{ item }}"}}  # fmt: skip
    sim = Rehearsal.of(steps(fan), inputs={"hosts": ["a", "b"]}, destructive=DESTRUCTIVE).start()
    first, second = sim.queued()
    sim.claim(first)
    sim.finish(first, ("ok", {}))
    sim.claim(second)
    sim.apply(UnitHeld(second, {"action": CONTAIN, "approvers": ["approver"], "inputs": {}}))
    assert sim.state.units[second].status == UnitStatus.WAITING_APPROVAL
    assert sim.state.status == RunStatus.WAITING_APPROVAL  # not "running": only people can act


def fanned(hosts: list[Any], **extra: Any) -> Rehearsal:
    fan = {"id": "d", "needs": ["gate"], "action": CONTAIN, "for_each": "{{ inputs.hosts }}",
           "with": {"device_id": "{{ item.id }}"}}  # fmt: skip
    definition = steps(gate(), fan, echo("after", "d"))
    sim = Rehearsal.of(definition, inputs={"hosts": hosts}, destructive=DESTRUCTIVE, **extra)
    return sim.start()


def test_a_fan_out_with_an_item_that_cannot_be_rendered_acts_on_none() -> None:
    sim = fanned([{"id": "a"}, {"nope": 1}])
    assert "unresolved" in sim.state.units[GATE].progress["guarded"]["d"]
    vote(sim, "alice")
    assert sim.queued() == []  # not d[0] either: its inputs were never shown as approved
    assert sim.status("d") == UnitStatus.FAILED


def test_a_rejected_item_hold_keeps_its_fan_out_from_succeeding() -> None:
    sim = fanned([{"id": "a"}, {"id": "b"}])
    vote(sim, "alice")
    first, second = UnitKey("d", 0), UnitKey("d", 1)
    sim.claim(first)
    sim.finish(first, ("ok", {}))
    sim.claim(second)
    sim.apply(
        UnitHeld(second, {"kind": "reauthorize", "approvers": ["ic"], "inputs": {"device_id": "b"}})
    )
    sim.apply(Vote(second, sim.state.units[second].progress["request"], "user:bob", False))
    assert sim.status("d") == UnitStatus.REJECTED
    assert sim.state.units[UnitKey("d")].error["rejected_items"] == [1]
    assert sim.status("after") == UnitStatus.SKIPPED
    assert sim.state.status == RunStatus.SUCCEEDED
