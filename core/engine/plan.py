"""The engine's view of a playbook version: what each step needs and how it behaves.

Built from a definition that has already passed validation, so this module only applies
defaults; it never reports user errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from playbooks.definition import parse_duration
from playbooks.graph import topological_order

OnFailure = Literal["stop", "continue", "compensate"]

DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 60.0
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently an action is retried."""

    attempts: int = DEFAULT_ATTEMPTS
    backoff: float = DEFAULT_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    jitter: bool = True


@dataclass(frozen=True)
class Compensation:
    """The action that undoes a step, run when the playbook compensates."""

    action: str
    with_: Mapping[str, Any]


@dataclass(frozen=True)
class StepPlan:
    """One step as the engine executes it."""

    id: str
    kind: Literal["action", "approval", "playbook"]
    needs: tuple[str, ...] = ()
    action: str | None = None
    with_: Mapping[str, Any] = field(default_factory=dict)
    if_: str | None = None
    for_each: Any = None
    max_parallel: int | None = None
    retry: RetryPolicy = RetryPolicy()
    timeout: float = DEFAULT_TIMEOUT
    connection: str | None = None
    compensate: Compensation | None = None

    @property
    def is_fan_out(self) -> bool:
        return self.for_each is not None


@dataclass(frozen=True)
class RunPlan:
    """All steps of a version in a stable topological order, plus run-wide policy."""

    name: str
    steps: tuple[StepPlan, ...]
    on_failure: OnFailure = "stop"
    by_id: Mapping[str, StepPlan] = field(default_factory=dict)
    # Transitive needs of each step, for failed() and skip propagation.
    ancestors: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Actions whose effect is unknown after a lost attempt (writes without an idempotency key).
    unsafe_to_repeat: frozenset[str] = frozenset()

    def safe_to_repeat(self, action: str) -> bool:
        return action not in self.unsafe_to_repeat

    def step(self, step_id: str) -> StepPlan:
        return self.by_id[step_id]


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    return parse_duration(value)


def _retry(data: Mapping[str, Any] | None) -> RetryPolicy:
    if not data:
        return RetryPolicy()
    return RetryPolicy(
        attempts=int(data.get("attempts", DEFAULT_ATTEMPTS)),
        backoff=_seconds(data.get("backoff"), DEFAULT_BACKOFF),
        max_backoff=_seconds(data.get("max_backoff"), DEFAULT_MAX_BACKOFF),
        jitter=bool(data.get("jitter", True)),
    )


def _step(data: Mapping[str, Any]) -> StepPlan:
    kind: Literal["action", "approval", "playbook"] = (
        "approval" if data.get("approval") else "playbook" if data.get("playbook") else "action"
    )
    compensate = data.get("compensate")
    return StepPlan(
        id=data["id"],
        kind=kind,
        needs=tuple(data.get("needs") or ()),
        action=data.get("action"),
        with_=dict(data.get("with") or {}),
        if_=data.get("if"),
        for_each=data.get("for_each"),
        max_parallel=data.get("max_parallel"),
        retry=_retry(data.get("retry")),
        timeout=_seconds(data.get("timeout"), DEFAULT_TIMEOUT),
        connection=data.get("connection"),
        compensate=(
            Compensation(action=compensate["action"], with_=dict(compensate.get("with") or {}))
            if compensate
            else None
        ),
    )


def _ancestors(steps: Mapping[str, StepPlan], order: list[str]) -> dict[str, frozenset[str]]:
    result: dict[str, frozenset[str]] = {}
    for step_id in order:
        found: set[str] = set()
        for need in steps[step_id].needs:
            found.add(need)
            found |= result[need]
        result[step_id] = frozenset(found)
    return result


def build_plan(
    definition: Mapping[str, Any], *, unsafe_to_repeat: frozenset[str] = frozenset()
) -> RunPlan:
    """The engine plan of a validated definition (the dict form, keys as in YAML)."""
    steps = {s["id"]: _step(s) for s in definition["steps"]}
    order = topological_order({sid: list(s.needs) for sid, s in steps.items()})
    return RunPlan(
        name=definition["name"],
        steps=tuple(steps[sid] for sid in order),
        on_failure=definition.get("on_failure", "stop"),
        by_id=steps,
        ancestors=_ancestors(steps, order),
        unsafe_to_repeat=unsafe_to_repeat,
    )
