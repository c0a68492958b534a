"""Errors that actions raise, carrying their intent as fields rather than in message text."""

from __future__ import annotations


class ActionError(Exception):
    """An action attempt failed.

    `retryable` says whether another attempt may succeed (timeouts, 429, 5xx, connection
    errors); `retry_after` is the vendor's requested wait in seconds, when it named one.
    `kind` is a short machine-readable class such as "timeout", "http_status", "validation".
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        kind: str = "error",
        retry_after: float | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.kind = kind
        self.retry_after = retry_after
        self.details = details or {}


class TransientError(ActionError):
    """A failure worth retrying."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "transient",
        retry_after: float | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(
            message, retryable=True, kind=kind, retry_after=retry_after, details=details
        )


class PermanentError(ActionError):
    """A failure that another attempt cannot fix (bad input, 4xx other than 429)."""

    def __init__(
        self, message: str, *, kind: str = "permanent", details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message, retryable=False, kind=kind, details=details)


class AttemptTimeout(TransientError):
    """The attempt ran past its per-attempt timeout."""

    def __init__(self, message: str = "the attempt exceeded its timeout") -> None:
        super().__init__(message, kind="timeout")


class AttemptFenced(ActionError):
    """This attempt lost its lease; it must not touch the outside world any more.

    Retryable: when nobody took the unit over (a database blip), a later attempt may run;
    when somebody did, this attempt's result is refused anyway."""

    def __init__(self) -> None:
        super().__init__("the attempt lost its lease and was fenced", retryable=True, kind="fenced")
