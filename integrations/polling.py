"""Waiting for a vendor's asynchronous work without holding a worker thread.

An action that has asked the vendor for something slow (containment, an evidence
package, a job) raises `wait(...)`: its unit is parked and the action is called again
after `poll_interval` seconds with its progress in `ctx.progress`, until the vendor says
done or the deadline set at the first wait has passed.
"""

from __future__ import annotations

import time
from typing import Any

from integrations.context import ActionContext, PollAgain
from integrations.errors import PermanentError

# Inputs every waiting action takes, with the same meaning.
DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_WAIT_TIMEOUT = 900.0
MIN_POLL_INTERVAL = 0.2


def wait(ctx: ActionContext, progress: dict[str, Any], *, poll_interval: float,
         wait_timeout: float, what: str) -> PollAgain:  # fmt: skip
    """The PollAgain to raise, or PermanentError once `wait_timeout` (counted from the first
    wait) has passed; `what` says what is awaited, for the message and the audit trail."""
    now = time.time()
    deadline = float(progress.setdefault("deadline", now + wait_timeout))
    if now >= deadline:
        raise PermanentError(
            f"gave up waiting after {wait_timeout:g}s: {what}", kind="wait_timeout",
            details={"progress": progress},
        )  # fmt: skip
    polls = int(progress.get("polls", 0)) + 1
    after = max(MIN_POLL_INTERVAL, min(poll_interval, deadline - now))
    return ctx.poll_again(after, {**progress, "polls": polls}, f"waiting: {what}")
