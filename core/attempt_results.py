"""A finished attempt's result, on its way from the worker into the run's state.

A worker records the result on the unit row (fenced by the attempt number) and then
advances the run. When several workers finish at once, whoever holds the run's lock
advances all recorded results in one transaction, so completions of a wide fan-out are
batched instead of queuing one commit at a time behind the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audit.events import NewEvent
from core.engine.events import UnitFailed, UnitHeld, UnitSucceeded, UnitWaiting
from core.engine.state import ErrorInfo, UnitKey


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did, with what the audit trail needs to tell about it."""

    attempt: int
    worker: str
    started_at: str
    idempotency_key: str
    action: str
    duration_ms: float
    output: Any = None
    error: dict[str, Any] | None = None
    # Set when the action asked to be polled again: {"after", "progress", "note"}.
    waiting: dict[str, Any] | None = None
    # Set when a blast-radius budget held the action back (see core.approvals.budgets).
    held: dict[str, Any] | None = None

    @property
    def outcome(self) -> str:
        if self.held:
            return "held"
        return "waiting" if self.waiting else "failed" if self.error else "succeeded"

    def as_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "worker": self.worker,
            "started_at": self.started_at,
            "idempotency_key": self.idempotency_key,
            "action": self.action,
            "duration_ms": self.duration_ms,
            "output": self.output,
            "error": self.error,
            "waiting": self.waiting,
            "held": self.held,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttemptResult:
        return cls(**data)

    def event(self, key: UnitKey) -> UnitSucceeded | UnitFailed | UnitWaiting | UnitHeld:
        if self.held is not None:
            return UnitHeld(key, self.held)
        if self.waiting is not None:
            waiting = self.waiting
            return UnitWaiting(
                key, float(waiting["after"]), waiting.get("progress"), str(waiting.get("note", ""))
            )
        if self.error is None:
            return UnitSucceeded(key, self.output)
        error = self.error
        return UnitFailed(
            key,
            ErrorInfo(
                message=str(error.get("message", "")),
                kind=str(error.get("kind", "error")),
                retryable=bool(error.get("retryable")),
                retry_after=error.get("retry_after"),
                request_sent=bool(error.get("request_sent")),
            ),
        )

    def audit_events(self, run_id: int, key: UnitKey) -> list[NewEvent]:
        """One event per attempt, recorded when its result lands: when it started, on which
        worker, under which idempotency key, how long it took and how it ended."""
        payload = {
            "unit": str(key),
            "attempt": self.attempt,
            "action": self.action,
            "started_at": self.started_at,
            "duration_ms": round(self.duration_ms, 3),
            "idempotency_key": self.idempotency_key,
            **({"error": self.error} if self.error else {}),
            **(
                {
                    "poll_after_seconds": self.waiting["after"],
                    "progress": self.waiting.get("progress"),
                }
                if self.waiting
                else {}
            ),
            **({"held_by_budget": self.held.get("action")} if self.held else {}),
        }
        return [
            NewEvent(
                stream=f"run:{run_id}",
                kind=f"attempt.{self.outcome}",
                actor=self.worker,
                payload=payload,
                run_id=run_id,
                step_id=key.step,
            )
        ]
