"""The state of one run as the engine sees it: plain data, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class UnitStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    # An asynchronous vendor action is between polls (or a connection's limit holds it).
    WAITING = "waiting"
    # An approval gate waiting for decisions, or an action held by a blast-radius budget.
    WAITING_APPROVAL = "waiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    # An approval gate (or a budget hold) that was rejected: what it guards is skipped.
    REJECTED = "rejected"
    NEEDS_ATTENTION = "needs_attention"


TERMINAL_UNIT = frozenset(
    {
        UnitStatus.SUCCEEDED,
        UnitStatus.FAILED,
        UnitStatus.SKIPPED,
        UnitStatus.CANCELLED,
        UnitStatus.REJECTED,
    }
)
ACTIVE_UNIT = frozenset(
    {UnitStatus.QUEUED, UnitStatus.RUNNING, UnitStatus.RETRY_WAIT, UnitStatus.WAITING}
)
# Parked until next_attempt_at, when the scheduler wakes them (RetryDue): a retry or a
# poll is queued again; a waiting approval is reminded, escalated or timed out.
TIMED_UNIT = frozenset({UnitStatus.RETRY_WAIT, UnitStatus.WAITING, UnitStatus.WAITING_APPROVAL})


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    NEEDS_ATTENTION = "needs_attention"
    # Nothing can move until people decide (approval gates or budget holds).
    WAITING_APPROVAL = "waiting_approval"


TERMINAL_RUN = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.COMPENSATED}
)

MAIN = "main"
COMPENSATE = "compensate"
NO_ITEM = -1


class Deferred:
    """A stored value decoded only when the engine reads it (most outputs never are)."""

    __slots__ = ("_decode", "_raw", "_value")

    def __init__(self, raw: Any, decode: Callable[[Any], Any]) -> None:
        self._raw, self._decode, self._value = raw, decode, _UNSET

    @property
    def value(self) -> Any:
        if self._value is _UNSET:
            self._value = self._decode(self._raw)
        return self._value


_UNSET = object()


def resolved(value: Any) -> Any:
    """The plain value behind `value`, which may be Deferred."""
    return value.value if isinstance(value, Deferred) else value


@dataclass(frozen=True, order=True)
class UnitKey:
    """Names a unit of work: a step, one item of a for_each step, or a compensation."""

    step: str
    item: int = NO_ITEM
    phase: str = MAIN

    def __str__(self) -> str:
        text = self.step if self.item == NO_ITEM else f"{self.step}[{self.item}]"
        return text if self.phase == MAIN else f"{text}:{self.phase}"

    @property
    def is_step(self) -> bool:
        """The step's own unit (for for_each steps, the aggregate of its items)."""
        return self.item == NO_ITEM and self.phase == MAIN

    @property
    def target(self) -> UnitKey:
        """For a compensation unit, the unit it undoes."""
        return UnitKey(self.step, self.item, MAIN)


@dataclass(frozen=True)
class Unit:
    """One unit's state. Executable units carry attempts; aggregates carry items_total."""

    key: UnitKey
    status: UnitStatus = UnitStatus.PENDING
    attempts: int = 0
    attempt_group: int = 1
    max_attempts: int = 1
    inputs: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    next_attempt_at: float | None = None
    finished_order: int | None = None
    items_total: int | None = None
    item_value: Any = None
    # What an asynchronous action keeps between its polls (a vendor's request id, say);
    # handed back to it on the next attempt of the same attempt group.
    progress: Any = None
    # How many approval requests the unit has opened: numbers its requests, never reset.
    requests_made: int = 0


@dataclass(frozen=True)
class ErrorInfo:
    """Why an attempt failed, with its retry intent."""

    message: str
    kind: str = "error"
    retryable: bool = False
    retry_after: float | None = None
    # The request left before the failure (a lost response): its effect is unknown.
    request_sent: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "kind": self.kind,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "request_sent": self.request_sent,
        }


@dataclass(frozen=True)
class RunState:
    """Everything the engine needs to decide a run's next moves."""

    run_id: int
    status: RunStatus
    inputs: dict[str, Any]
    units: dict[UnitKey, Unit]
    context: dict[str, Any] = field(default_factory=dict)

    def unit(self, key: UnitKey) -> Unit:
        return self.units[key]

    def step_unit(self, step_id: str) -> Unit:
        return self.units[UnitKey(step_id)]

    def items_of(self, step_id: str) -> list[Unit]:
        total = self.step_unit(step_id).items_total or 0
        return [self.units[UnitKey(step_id, i)] for i in range(total)]

    def compensations(self) -> list[Unit]:
        return [u for k, u in self.units.items() if k.phase != MAIN]

    @property
    def failure_seen(self) -> bool:
        return any(u.status == UnitStatus.FAILED for k, u in self.units.items() if k.is_step)

    @property
    def last_finished_order(self) -> int:
        return max((u.finished_order or 0 for u in self.units.values()), default=0)
