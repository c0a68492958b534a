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
SUBPLAYBOOK_ACTION = "playbook.run"


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
class Rung:
    """Who an approval gate asks, and for how long (None: until someone decides)."""

    approvers: tuple[str, ...]
    timeout: float | None


@dataclass(frozen=True)
class ApprovalPlan:
    """An approval gate: a ladder of rungs (the first is `approvers`), a quorum, and what a
    timeout on the last rung means."""

    rungs: tuple[Rung, ...]
    min_approvals: int = 1
    on_timeout: Literal["reject", "approve", "escalate"] = "reject"
    remind_every: float | None = None
    four_eyes: bool | None = None
    message: str | None = None
    notify: tuple[Mapping[str, Any], ...] = ()


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
    approval: ApprovalPlan | None = None

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
    # The destructive steps each gate guards (the ones after it with no other gate
    # between), and the gate guarding each such step: a decision is bound to their inputs.
    guards: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    guarded_by: Mapping[str, str] = field(default_factory=dict)

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


def _approval(data: Mapping[str, Any] | None) -> ApprovalPlan | None:
    if not data:
        return None
    timeout = data.get("timeout")
    first = Rung(tuple(data["approvers"]), None if timeout is None else parse_duration(timeout))
    ladder = tuple(
        Rung(
            tuple(rung["approvers"]),
            parse_duration(rung["timeout"]) if rung.get("timeout") is not None else first.timeout,
        )
        for rung in data.get("escalate_to") or ()
    )
    remind = data.get("remind_every")
    return ApprovalPlan(
        rungs=(first, *ladder),
        min_approvals=int(data.get("min_approvals", 1)),
        on_timeout=data.get("on_timeout", "reject"),
        remind_every=None if remind is None else parse_duration(remind),
        four_eyes=data.get("four_eyes"),
        message=data.get("message"),
        notify=tuple(dict(n) for n in data.get("notify") or ()),
    )


def _step(data: Mapping[str, Any]) -> StepPlan:
    kind: Literal["action", "approval", "playbook"] = (
        "approval" if data.get("approval") else "playbook" if data.get("playbook") else "action"
    )
    compensate = data.get("compensate")
    # A `playbook:` step runs as the engine's own action, which starts the child run and
    # waits for it (core.subplaybooks); its `with:` are the child's inputs.
    playbook = data.get("playbook")
    return StepPlan(
        id=data["id"],
        kind=kind,
        needs=tuple(data.get("needs") or ()),
        action=SUBPLAYBOOK_ACTION if playbook else data.get("action"),
        with_=(
            {"playbook": playbook, "inputs": dict(data.get("with") or {})}
            if playbook
            else dict(data.get("with") or {})
        ),
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
        approval=_approval(data.get("approval")),
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


def _guards(
    steps: Mapping[str, StepPlan],
    order: list[str],
    ancestors: Mapping[str, frozenset[str]],
    destructive: frozenset[str],
) -> dict[str, tuple[str, ...]]:
    """For each gate, the destructive steps after it that no later gate stands before:
    the nearest gate on the way to a destructive step is the one whose decision it needs."""
    gates = [sid for sid in order if steps[sid].kind == "approval"]
    guards: dict[str, tuple[str, ...]] = {}
    for gate in gates:
        guarded = []
        for sid in order:
            if gate not in ancestors[sid] or steps[sid].action not in destructive:
                continue
            later_gate = any(
                g != gate and gate in ancestors[g] and g in ancestors[sid] for g in gates
            )
            if not later_gate:
                guarded.append(sid)
        if guarded:
            guards[gate] = tuple(guarded)
    return guards


def build_plan(
    definition: Mapping[str, Any],
    *,
    unsafe_to_repeat: frozenset[str] = frozenset(),
    destructive: frozenset[str] = frozenset(),
) -> RunPlan:
    """The engine plan of a validated definition (the dict form, keys as in YAML)."""
    steps = {s["id"]: _step(s) for s in definition["steps"]}
    order = topological_order({sid: list(s.needs) for sid, s in steps.items()})
    ancestors = _ancestors(steps, order)
    guards = _guards(steps, order, ancestors, destructive)
    guarded_by: dict[str, str] = {}
    for gate in order:  # a step after two unrelated gates binds to the later one in order
        for sid in guards.get(gate, ()):
            guarded_by[sid] = gate
    return RunPlan(
        name=definition["name"],
        steps=tuple(steps[sid] for sid in order),
        on_failure=definition.get("on_failure", "stop"),
        by_id=steps,
        ancestors=ancestors,
        unsafe_to_repeat=unsafe_to_repeat,
        guards=guards,
        guarded_by=guarded_by,
    )
