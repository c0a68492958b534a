"""Test and demo helpers: echo, sleep and fail."""

from __future__ import annotations

import time
from typing import Any

from integrations.context import ActionContext
from integrations.errors import PermanentError, TransientError
from integrations.registry import action


@action("util.echo", side_effect="read", output="`message` and `data`, as given")
def echo(
    ctx: ActionContext, *, message: Any = None, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return the given message and data unchanged."""
    ctx.check()
    return {"message": message, "data": data or {}}


@action("util.sleep", side_effect="read", output="`slept`: the seconds slept")
def sleep(ctx: ActionContext, *, seconds: float = 1.0) -> dict[str, Any]:
    """Sleep for `seconds` (bounded by the step's timeout), then return."""
    end = time.monotonic() + max(0.0, seconds)
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, ctx.remaining(), 0.2))
    return {"slept": seconds}


@action(
    "util.fail",
    side_effect="read",
    output="`attempt`: the attempt that succeeded (with succeed_on_attempt)",
)
def fail(
    ctx: ActionContext,
    *,
    message: str = "failed on purpose",
    retryable: bool = False,
    succeed_on_attempt: int | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """Fail with a permanent (or, with `retryable`, transient) error.

    With `succeed_on_attempt: N`, attempts before N fail and attempt N succeeds, which
    lets a playbook exercise retries.
    """
    ctx.check()
    if succeed_on_attempt is not None and ctx.attempt >= succeed_on_attempt:
        return {"attempt": ctx.attempt}
    if retryable:
        raise TransientError(message, kind="injected", retry_after=retry_after)
    raise PermanentError(message, kind="injected")
