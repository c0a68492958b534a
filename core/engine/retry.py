"""When the next attempt of a failed action may start."""

from __future__ import annotations

import hashlib

from core.engine.plan import RetryPolicy

# A vendor's Retry-After is honoured even past max_backoff, but never beyond this.
MAX_RETRY_AFTER = 3600.0


def _unit_interval(seed: str) -> float:
    """A repeatable number in [0, 1) from `seed`: jitter without hidden randomness."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def backoff_delay(
    policy: RetryPolicy, *, attempt: int, retry_after: float | None = None, seed: str = ""
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    Exponential from `policy.backoff`, capped at `policy.max_backoff`, with "equal jitter"
    (half fixed, half random) so a burst of failures does not retry in lockstep. A
    vendor's Retry-After wins when it asks for longer.
    """
    delay = min(policy.max_backoff, policy.backoff * (2 ** max(0, attempt - 1)))
    if policy.jitter:
        delay = delay / 2 + delay / 2 * _unit_interval(f"{seed}:{attempt}")
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, MAX_RETRY_AFTER)
    return max(0.0, float(delay))
