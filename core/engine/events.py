"""What can happen to a run (events in) and what the engine asks for (commands and facts out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.engine.state import ErrorInfo, RunState, UnitKey


@dataclass(frozen=True)
class Start:
    """The run was created; start the steps that need nothing."""


@dataclass(frozen=True)
class UnitSucceeded:
    key: UnitKey
    output: Any


@dataclass(frozen=True)
class UnitFailed:
    key: UnitKey
    error: ErrorInfo


@dataclass(frozen=True)
class UnitWaiting:
    """The attempt asked to be called again after `after` seconds, keeping `progress`
    (an asynchronous vendor action between polls, or a connection's limit)."""

    key: UnitKey
    after: float
    progress: Any = None
    note: str = ""


@dataclass(frozen=True)
class UnitLost:
    """The unit's attempt stopped heartbeating (its worker died or was fenced)."""

    key: UnitKey


@dataclass(frozen=True)
class RetryDue:
    key: UnitKey


@dataclass(frozen=True)
class Cancel:
    reason: str = "cancelled"


@dataclass(frozen=True)
class RetryStep:
    """An operator asks to run a failed step again (and what it made skip)."""

    step_id: str


@dataclass(frozen=True)
class Resume:
    """An operator resumes a failed run: every failed step runs again (and what it made
    skip), the steps that succeeded keep their outputs."""


@dataclass(frozen=True)
class UnitHeld:
    """The attempt did not act: a blast-radius budget is spent, so the unit asks for an
    approval instead (`hold` says which budget, its limit and window)."""

    key: UnitKey
    hold: dict[str, Any]


@dataclass(frozen=True)
class Vote:
    """A person's decision on the unit's current approval request (number `request`).

    Whether the voter may decide (groups, four-eyes, roles) is the shell's to check
    before; the engine counts the quorum and decides the gate."""

    key: UnitKey
    request: int
    voter: str
    approve: bool
    comment: str = ""
    channel: str = "api"
    # The voter's groups, when the shell knows them: the engine checks them against the
    # groups the request asks now (it may have escalated since the shell looked).
    groups: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Nudge:
    """Nothing new happened: just re-derive what follows from the state."""


Event = (
    Start
    | UnitSucceeded
    | UnitFailed
    | UnitWaiting
    | UnitLost
    | RetryDue
    | Cancel
    | RetryStep
    | Resume
    | UnitHeld
    | Vote
    | Nudge
)


@dataclass(frozen=True)
class Execute:
    """Send this queued unit to a worker."""

    key: UnitKey


@dataclass(frozen=True)
class Fact:
    """Something that happened, for the audit trail."""

    kind: str
    key: UnitKey | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The engine's answer to an event: the new state and what changed."""

    state: RunState
    changed: frozenset[UnitKey]
    created: frozenset[UnitKey]
    commands: tuple[Execute, ...]
    facts: tuple[Fact, ...]
    run_status_changed: bool
