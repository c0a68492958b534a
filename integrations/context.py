"""What an action attempt is told about itself: who it is, its deadline, its connection."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from integrations.errors import AttemptFenced, AttemptTimeout


@dataclass(frozen=True)
class ConnectionInfo:
    """A configured instance of an integration, with its credentials decrypted."""

    name: str
    integration: str
    base_url: str
    credentials: dict[str, Any] = field(repr=False)
    allow_private_network: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    rate_limit_per_minute: int | None = None
    circuit_failures: int = 5
    circuit_cooldown_seconds: float = 30.0


class PollAgain(Exception):
    """Raised by an asynchronous action whose vendor work is not done yet: call me again
    after `after` seconds with `progress` as `ctx.progress`. The worker thread is freed
    meanwhile; the wait does not use up one of the step's attempts.

    `progress` must hold what the action needs to resume without acting again (a job id,
    a machine action id): once a unit has progress, an attempt whose outcome is unknown
    is retried, because the next attempt resumes rather than repeats."""

    def __init__(self, after: float, progress: Any, note: str = "") -> None:
        super().__init__(note or f"poll again in {after:g}s")
        self.after = after
        self.progress = progress
        self.note = note


@dataclass
class ActionContext:
    """Per-attempt context handed to every action function as its first argument."""

    run_id: int
    step_id: str
    item_index: int | None
    attempt: int
    idempotency_key: str
    timeout_seconds: float
    connection: ConnectionInfo | None = None
    # What this action kept when it last asked to poll again (None on its first call).
    progress: Any = None
    started_at: float = field(default_factory=time.monotonic)
    # Set by the heartbeat when this attempt's lease is lost: the action must stop acting.
    fenced: threading.Event = field(default_factory=threading.Event)

    @property
    def deadline(self) -> float:
        return self.started_at + self.timeout_seconds

    def remaining(self) -> float:
        """Seconds left before the per-attempt timeout; raises when none are left."""
        self.check()
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AttemptTimeout(f"the attempt exceeded its timeout of {self.timeout_seconds:g}s")
        return left

    def poll_again(self, after: float, progress: Any, note: str = "") -> PollAgain:
        """The exception to raise to be called again after `after` seconds."""
        return PollAgain(after, progress, note)

    def check(self) -> None:
        """Raise if the attempt was fenced; actions call this before each external effect."""
        if self.fenced.is_set():
            raise AttemptFenced()
