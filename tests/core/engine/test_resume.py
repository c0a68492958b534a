"""Resuming a failed run: every failed step runs again with a new attempt group, what it
made skip runs after it, and what succeeded is neither repeated nor changed."""

from __future__ import annotations

import pytest

from core.engine.advance import EngineError
from core.engine.events import Resume, UnitLost
from core.engine.state import RunStatus, UnitKey
from tests.core.engine.harness import Rehearsal, echo, steps
from tests.core.engine.test_advance import fails_at


def test_resume_runs_every_failed_step_again_and_keeps_what_succeeded() -> None:
    definition = steps(echo("a"), echo("b", "a"), echo("c", "a"), echo("d", "b", "c"),
                       on_failure="continue")  # fmt: skip
    sim = Rehearsal.of(definition).start()
    sim.run(fails_at("b", "c"))
    assert sim.state.status == RunStatus.FAILED
    output_a = sim.state.units[UnitKey("a")].output
    decision = sim.apply(Resume())
    assert [f.payload for f in decision.facts if f.kind == "run.resumed"] == [
        {"steps": ["b", "c"], "kept": ["a"]}
    ]
    assert sim.state.status == RunStatus.RUNNING
    state = sim.run()
    assert state.status == RunStatus.SUCCEEDED
    assert [k.step for k in sim.claims].count("a") == 1
    assert [k.step for k in sim.claims].count("d") == 1  # skipped before, run now
    assert state.units[UnitKey("a")].output == output_a


def test_resume_is_refused_when_nothing_failed_or_compensation_ran() -> None:
    sim = Rehearsal.of(steps(echo("a"))).start()
    sim.run()
    with pytest.raises(
        EngineError, match="only a failed run or one that needs attention can resume"
    ):
        sim.apply(Resume())
    definition = steps(echo("a", compensate={"action": "util.echo", "with": {}}), echo("b", "a"),
                       on_failure="compensate")  # fmt: skip
    compensated = Rehearsal.of(definition).start()
    compensated.run(fails_at("b"))
    with pytest.raises(EngineError, match="can resume; this run is compensated"):
        compensated.apply(Resume())


def test_resume_leaves_a_write_whose_outcome_is_unknown_to_a_person() -> None:
    definition = steps({"id": "post", "action": "vendor.write", "retry": {"attempts": 5}})
    sim = Rehearsal.of(definition, unsafe=frozenset({"vendor.write"})).start()
    sim.claim(UnitKey("post"))
    sim.apply(UnitLost(UnitKey("post")))
    assert sim.state.status == RunStatus.NEEDS_ATTENTION
    with pytest.raises(EngineError, match="the outcome of step post is unknown"):
        sim.apply(Resume())
