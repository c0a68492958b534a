"""Copy-on-write edits of a run's state during one engine decision (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.engine.events import Execute, Fact
from core.engine.plan import RunPlan
from core.engine.state import COMPENSATE, RunState, RunStatus, Unit, UnitKey, UnitStatus, resolved


class EngineError(Exception):
    """An event that does not fit the run's state (a caller's mistake, not a run failure)."""


class Builder:
    """Copy-on-write edits of a RunState, remembering what changed."""

    def __init__(self, plan: RunPlan, state: RunState, now: float) -> None:
        self.plan = plan
        self.now = now
        self.status = state.status
        self.units = dict(state.units)
        self.original = state
        self.changed: set[UnitKey] = set()
        self.created: set[UnitKey] = set()
        self.commands: list[Execute] = []
        self.facts: list[Fact] = []
        self._last_order: int | None = None
        # The `steps` mapping templates see, built once per decision and renewed (never
        # changed in place: a template may hand it on) when a step's own unit changes.
        self._steps_view: dict[str, dict[str, Any]] | None = None
        self._stale_steps: set[str] = set()
        # How many steps have failed, kept current by update() (asked once per ready step).
        self._failed_steps = sum(
            1 for k, u in self.units.items() if k.is_step and u.status == UnitStatus.FAILED
        )

    @property
    def state(self) -> RunState:
        return replace(self.original, status=self.status, units=self.units)

    def unit(self, key: UnitKey) -> Unit:
        return self.units[key]

    def update(self, key: UnitKey, **fields: Any) -> Unit:
        before = self.units[key]
        unit = replace(before, **fields)
        self.units[key] = unit
        if key not in self.created:
            self.changed.add(key)
        if key.is_step:
            self._stale_steps.add(key.step)
            self._failed_steps += (unit.status == UnitStatus.FAILED) - (
                before.status == UnitStatus.FAILED
            )
        return unit

    def create(self, unit: Unit) -> None:
        if unit.key in self.units:
            raise EngineError(f"unit {unit.key} exists already")
        self.units[unit.key] = unit
        self.created.add(unit.key)

    def fact(self, kind: str, key: UnitKey | None = None, **payload: Any) -> None:
        self.facts.append(Fact(kind=kind, key=key, payload=payload))

    def set_run_status(self, status: RunStatus, **payload: Any) -> None:
        if status != self.status:
            self.status = status
            self.fact(f"run.{status.value}", **payload)

    def next_order(self) -> int:
        """The next number in the order units finished (compensation runs in reverse)."""
        if self._last_order is None:
            self._last_order = max((u.finished_order or 0 for u in self.units.values()), default=0)
        self._last_order += 1
        return self._last_order

    # -- helpers over the plan ------------------------------------------------------
    def main_units(self) -> list[Unit]:
        return [u for k, u in self.units.items() if k.phase != COMPENSATE]

    def failure_seen(self) -> bool:
        return self._failed_steps > 0

    def _step_view(self, step_id: str) -> dict[str, Any]:
        u = self.units[UnitKey(step_id)]
        outcome = u.reason if u.status == UnitStatus.SKIPPED else u.status.value
        output = resolved(u.output)
        # An approval gate's outcome is its decision: approved or rejected.
        decided = u.status in (UnitStatus.SUCCEEDED, UnitStatus.REJECTED)
        if decided and isinstance(output, dict) and self.plan.step(step_id).kind == "approval":
            outcome = str(output.get("outcome", outcome))
        return {
            "status": u.status.value,
            "outcome": outcome,
            "output": output,
            "error": u.error,
        }

    def _steps(self) -> dict[str, dict[str, Any]]:
        if self._steps_view is None:
            self._steps_view = {step.id: self._step_view(step.id) for step in self.plan.steps}
        elif self._stale_steps:
            self._steps_view = self._steps_view | {
                step_id: self._step_view(step_id) for step_id in self._stale_steps
            }
        self._stale_steps.clear()
        return self._steps_view

    def template_context(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        context = {
            "inputs": self.original.inputs,
            "steps": self._steps(),
            "alert": self.original.context.get("alert"),
            "run": {"id": self.original.run_id, "playbook": self.plan.name},
        }
        if extra:
            context.update(extra)
        return context


def finish_success(b: Builder, key: UnitKey, output: Any) -> None:
    b.update(
        key,
        status=UnitStatus.SUCCEEDED,
        output=output,
        error=None,
        next_attempt_at=None,
        finished_order=b.next_order(),
    )
    b.fact("step.succeeded" if key.phase != COMPENSATE else "compensation.succeeded", key)


def fail(b: Builder, key: UnitKey, error: dict[str, Any], *, kind: str = "step.failed") -> None:
    b.update(
        key,
        status=UnitStatus.FAILED,
        error=error,
        next_attempt_at=None,
        finished_order=b.next_order(),
    )
    b.fact(kind if key.phase != COMPENSATE else "compensation.failed", key, error=error)


def renewed(b: Builder, unit: Unit) -> dict[str, Any]:
    """Fields that make a unit runnable again with a fresh attempt budget and key.

    `attempts` never goes down: it is the unit's fencing token, so it must stay monotonic.
    """
    return {
        "status": UnitStatus.PENDING,
        "attempt_group": unit.attempt_group + 1,
        "max_attempts": unit.attempts + b.plan.step(unit.key.step).retry.attempts,
        "error": None,
        "reason": None,
        "next_attempt_at": None,
        "finished_order": None,
        "progress": None,
    }
