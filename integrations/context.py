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

    def check(self) -> None:
        """Raise if the attempt was fenced; actions call this before each external effect."""
        if self.fenced.is_set():
            raise AttemptFenced()
