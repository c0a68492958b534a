"""A rehearsal harness: drives the pure engine core against scripted action outcomes.

It plays the shell's part (claims, a clock, retry timers) and checks the engine's
invariants after every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.engine.advance import advance, claim, new_run_state
from core.engine.events import (
    Decision,
    Event,
    RetryDue,
    Start,
    UnitFailed,
    UnitLost,
    UnitSucceeded,
    UnitWaiting,
)
from core.engine.plan import RunPlan, build_plan
from core.engine.state import (
    ACTIVE_UNIT,
    TERMINAL_RUN,
    TERMINAL_UNIT,
    TIMED_UNIT,
    ErrorInfo,
    RunState,
    RunStatus,
    UnitKey,
    UnitStatus,
)

# What an attempt does: ("ok", output) | ("transient", msg) | ("permanent", msg) | ("lost", None)
# | ("wait", (seconds, progress)) to be polled again
Result = tuple[str, Any]
Script = Callable[[UnitKey, int], Result]


def always_ok(key: UnitKey, attempt: int) -> Result:
    return ("ok", {"step": key.step, "item": key.item})


@dataclass
class Rehearsal:
    plan: RunPlan
    inputs: dict[str, Any] = field(default_factory=dict)
    now: float = 1_000.0
    state: RunState = field(init=False)
    claims: list[UnitKey] = field(default_factory=list)
    facts: list[tuple[str, str | None]] = field(default_factory=list)
    events: int = 0

    def __post_init__(self) -> None:
        self.state = new_run_state(self.plan, run_id=1, inputs=self.inputs)

    @classmethod
    def of(cls, definition: dict[str, Any], **kwargs: Any) -> Rehearsal:
        plan = build_plan(
            definition,
            unsafe_to_repeat=kwargs.pop("unsafe", frozenset()),
            destructive=kwargs.pop("destructive", frozenset()),
        )
        return cls(plan, **kwargs)

    def apply(self, event: Event) -> Decision:
        decision = advance(self.plan, self.state, event, self.now)
        self.state = decision.state
        self.events += 1
        self.facts.extend((f.kind, str(f.key) if f.key else None) for f in decision.facts)
        self._check(decision)
        return decision

    def _check(self, decision: Decision) -> None:
        for command in decision.commands:
            assert self.state.units[command.key].status == UnitStatus.QUEUED, command
        for key in self.state.units:
            if key.phase == "compensate":
                assert self.state.units[key.target].status == UnitStatus.SUCCEEDED, (
                    f"compensation {key} for a unit that did not succeed"
                )

    def status(self, unit: str) -> UnitStatus:
        step, _, rest = unit.partition("[")
        item = int(rest.rstrip("]")) if rest else -1
        return self.state.units[UnitKey(step, item)].status

    def queued(self) -> list[UnitKey]:
        return sorted(k for k, u in self.state.units.items() if u.status == UnitStatus.QUEUED)

    def start(self) -> Rehearsal:
        self.apply(Start())
        return self

    def claim(self, key: UnitKey) -> None:
        step = self.plan.step(key.step)
        if key.phase == "main" and self.state.units[key].attempts == 0:
            for need in step.needs:
                assert self.state.units[UnitKey(need)].status in TERMINAL_UNIT, (
                    f"{key} started before its need {need} ended"
                )
        running = [
            k for k, u in self.state.units.items() if u.status == UnitStatus.RUNNING and k == key
        ]
        assert not running, f"{key} claimed while an attempt is running"
        self.state = claim(self.state, key)
        self.claims.append(key)

    def finish(self, key: UnitKey, result: Result) -> None:
        kind, value = result
        if kind == "ok":
            self.apply(UnitSucceeded(key, value))
        elif kind == "lost":
            self.apply(UnitLost(key))
        elif kind == "wait":
            after, progress = value
            self.apply(UnitWaiting(key, after, progress))
        else:
            self.apply(
                UnitFailed(key, ErrorInfo(str(value), kind=kind, retryable=kind == "transient"))
            )

    def tick(self) -> bool:
        """Advance the clock to the next retry or poll timer and fire it."""
        due = [
            u
            for u in self.state.units.values()
            if u.status in TIMED_UNIT
            and not (u.status == UnitStatus.WAITING_APPROVAL and u.next_attempt_at is None)
        ]
        if not due:
            return False
        nearest = min(u.next_attempt_at or self.now for u in due)
        self.now = max(self.now, nearest)
        for unit in due:
            if (unit.next_attempt_at or 0) <= self.now:
                self.apply(RetryDue(unit.key))
        return True

    def run(
        self,
        script: Script = always_ok,
        *,
        pick: Callable[[list[UnitKey]], UnitKey] | None = None,
        limit: int = 5_000,
    ) -> RunState:
        """Run until nothing is queued or waiting; `pick` chooses among queued units."""
        for _ in range(limit):
            queued = self.queued()
            if queued:
                key = pick(queued) if pick else queued[0]
                self.claim(key)
                self.finish(key, script(key, self.state.units[key].attempts))
            elif not self.tick():
                return self.state
        raise AssertionError("the run did not settle")

    @property
    def settled(self) -> bool:
        return self.state.status in TERMINAL_RUN or (
            self.state.status == RunStatus.NEEDS_ATTENTION
            and not any(u.status in ACTIVE_UNIT for u in self.state.units.values())
        )


def steps(*specs: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A definition dict from step dicts."""
    return {"name": "test", "steps": list(specs), **top}


def echo(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "action": "util.echo",
        "needs": list(needs),
        "with": {"message": step_id},
        **extra,
    }
