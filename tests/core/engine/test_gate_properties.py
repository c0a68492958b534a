"""Properties of approval gates over random DAGs, decisions and timeouts (hypothesis):
no destructive step acts unless its gate approved exactly the inputs it is sent, and
every run ends once people have decided."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine.events import Decision, Vote
from core.engine.gates import inputs_hash
from core.engine.state import TERMINAL_RUN, UnitKey, UnitStatus
from tests.core.engine.harness import Rehearsal

DANGER = "tests.danger"


class Recording(Rehearsal):
    """Keeps the bound hash of every approval the engine decided, by unit."""

    approved: dict[UnitKey, str]

    def apply(self, event: Any) -> Decision:
        decision = super().apply(event)
        if not hasattr(self, "approved"):
            self.approved = {}
        for fact in decision.facts:
            if fact.kind == "approval.approved" and fact.key is not None:
                self.approved[fact.key] = fact.payload["bound_hash"]
        return decision


@st.composite
def gated_playbooks(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=2, max_value=8))
    steps: list[dict[str, Any]] = []
    for index in range(count):
        earlier = [f"s{i}" for i in range(index)]
        needs = sorted(draw(st.sets(st.sampled_from(earlier), max_size=2))) if earlier else []
        kind = draw(st.sampled_from(["gate", "danger", "danger", "echo"]))
        step: dict[str, Any] = {"id": f"s{index}", "needs": needs}
        if kind == "gate":
            approval: dict[str, Any] = {
                "approvers": ["ic"],
                "min_approvals": draw(st.integers(1, 2)),
            }
            if draw(st.booleans()):
                approval |= {
                    "timeout": "10m",
                    "on_timeout": draw(st.sampled_from(["reject", "approve"])),
                }
            step["approval"] = approval
        else:
            # Inputs may come from any earlier step, upstream or not, finished or not.
            source = draw(st.sampled_from([None, *earlier]))
            value = "{{ inputs.host }}" if source is None else f"{{{{ steps.{source}.status }}}}"
            step |= {"action": DANGER if kind == "danger" else "util.echo", "with": {"host": value}}
            if draw(st.integers(0, 3)) == 0:
                step["if"] = "always()"
        steps.append(step)
    return {
        "name": "random-gates",
        "steps": steps,
        "on_failure": draw(st.sampled_from(["stop", "continue"])),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definition=gated_playbooks(), data=st.data())
def test_destructive_steps_act_only_on_approved_inputs_and_every_run_ends(
    definition: dict[str, Any], data: st.DataObject
) -> None:
    sim = Recording.of(definition, inputs={"host": "h1"}, destructive=frozenset({DANGER}))
    sim.start()
    guarded_by = sim.plan.guarded_by
    for _ in range(500):
        queued = sim.queued()
        if queued:
            key = data.draw(st.sampled_from(queued), label="pick")
            unit = sim.state.units[key]
            if key.step in guarded_by and key.phase == "main" and unit.attempts == 0:
                gate = sim.state.units[UnitKey(guarded_by[key.step])]
                # `if: always()` runs whatever the gate said (the publish guardrail refuses it).
                if sim.plan.step(key.step).if_ is None:
                    assert gate.status == UnitStatus.SUCCEEDED, (key, gate)
                    # Approved by the gate, or asked again and approved for these inputs.
                    by_gate = gate.output["bound"][key.step] == inputs_hash(unit.inputs)
                    again = sim.approved.get(key) == inputs_hash({key.step: unit.inputs})
                    assert by_gate or again, (key, unit.inputs)
            sim.claim(key)
            outcome = data.draw(st.sampled_from(["ok", "ok", "permanent"]), label=f"{key}")
            sim.finish(key, (outcome, {"done": key.step}))
            continue
        waiting = sorted(
            k for k, u in sim.state.units.items() if u.status == UnitStatus.WAITING_APPROVAL
        )
        if waiting and data.draw(st.booleans(), label="vote or wait"):
            key = data.draw(st.sampled_from(waiting), label="gate")
            unit = sim.state.units[key]
            voter = f"user:{len(unit.progress['approvals'])}"
            sim.apply(
                Vote(
                    key, unit.progress["request"], voter, data.draw(st.booleans(), label="approve")
                )
            )
            continue
        if not sim.tick():
            if not waiting:
                break
            key = waiting[0]  # nobody waits forever in this test: someone decides
            unit = sim.state.units[key]
            sim.apply(Vote(key, unit.progress["request"], "user:last", False))
    assert sim.state.status in TERMINAL_RUN, sim.state.status
