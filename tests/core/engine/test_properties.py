"""Properties of the engine over random DAGs and random outcomes (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine.events import RetryStep
from core.engine.state import ACTIVE_UNIT, TERMINAL_RUN, RunStatus, UnitKey, UnitStatus
from tests.core.engine.harness import Rehearsal

OUTCOMES = ["ok", "ok", "ok", "transient", "permanent", "lost", "wait"]


@st.composite
def playbooks(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=8))
    steps = []
    for index in range(count):
        step: dict[str, Any] = {
            "id": f"s{index}",
            "action": "util.echo",
            "needs": sorted(
                draw(st.sets(st.sampled_from([f"s{i}" for i in range(index)]), max_size=3))
            )
            if index
            else [],
            "with": {"message": f"s{index}"},
            "retry": {"attempts": draw(st.integers(1, 3)), "backoff": "1s"},
        }
        condition = draw(
            st.sampled_from([None, None, "always()", "failed()", "inputs.flag", "succeeded()"])
        )
        if condition:
            step["if"] = condition
        if draw(st.booleans()):
            step["compensate"] = {"action": "util.echo", "with": {"message": "undo"}}
        if draw(st.integers(0, 4)) == 0:
            step["for_each"] = "{{ inputs.items }}"
            step["max_parallel"] = draw(st.integers(1, 3))
        steps.append(step)
    on_failure = draw(st.sampled_from(["stop", "continue", "compensate"]))
    return {"name": "random", "steps": steps, "on_failure": on_failure}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definition=playbooks(), data=st.data(), flag=st.booleans(), items=st.integers(0, 3))
def test_every_random_run_settles_and_keeps_the_engine_invariants(
    definition: dict[str, Any], data: st.DataObject, flag: bool, items: int
) -> None:
    sim = Rehearsal.of(definition, inputs={"flag": flag, "items": list(range(items))}).start()

    def script(key: UnitKey, attempt: int) -> tuple[str, Any]:
        kind = data.draw(st.sampled_from(OUTCOMES), label=f"{key}#{attempt}")
        return (kind, (5.0, {"polled": attempt}) if kind == "wait" else "x")

    def pick(queued: list[UnitKey]) -> UnitKey:
        return data.draw(st.sampled_from(queued), label="pick")

    state = sim.run(script, pick=pick)  # the harness asserts needs-before-start and single attempts
    for _ in range(2):  # an operator retries a failed step, sometimes twice
        retryable = [
            k.step for k, u in state.units.items()
            if k.is_step and u.status in {UnitStatus.FAILED, UnitStatus.NEEDS_ATTENTION}
        ]  # fmt: skip
        compensated = any(k.phase == "compensate" for k in state.units)  # retries refused then
        if (
            state.status not in {RunStatus.FAILED, RunStatus.NEEDS_ATTENTION}
            or not retryable
            or compensated
        ):
            break
        if data.draw(st.booleans(), label="retry"):
            sim.apply(RetryStep(data.draw(st.sampled_from(retryable), label="step")))
            state = sim.run(script, pick=pick)

    # Every run terminates, or waits visibly with nothing in flight.
    assert state.status in TERMINAL_RUN or state.status == RunStatus.NEEDS_ATTENTION
    assert not any(u.status in ACTIVE_UNIT for u in state.units.values())
    if state.status == RunStatus.NEEDS_ATTENTION:
        assert any(u.status == UnitStatus.NEEDS_ATTENTION for u in state.units.values())

    # No unit is attempted more often than its policy allows.
    for unit in state.units.values():
        assert unit.attempts <= max(unit.max_attempts, 1)

    # Compensation ran only for succeeded steps, in reverse order of their completion.
    compensated = [k for k in sim.claims if k.phase == "compensate"]
    for key in compensated:
        assert state.units[key.target].status == UnitStatus.SUCCEEDED
    orders = [state.units[k.target].finished_order for k in dict.fromkeys(compensated)]
    assert orders == sorted(orders, reverse=True)
    if compensated:
        assert definition["on_failure"] == "compensate"

    # A succeeded run has no failed step; a failed step means the run did not succeed.
    failed = any(u.status == UnitStatus.FAILED for k, u in state.units.items() if k.is_step)
    if state.status == RunStatus.SUCCEEDED:
        assert not failed
    if failed:
        assert state.status != RunStatus.SUCCEEDED
