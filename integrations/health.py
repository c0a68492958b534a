"""Per-connection rate limits and circuit breakers, shared by all runs and workers.

Before an attempt talks to a vendor it is admitted: an open circuit refuses it (a
transient error that names the cool-down, so the retry policy waits it out); a
connection over its rate limit defers it (the unit waits without using up an attempt,
like a poll). After each request the outcome is recorded: N consecutive transient
failures open the circuit; after the cool-down one attempt probes (half-open), and its
success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import random
import time

from django.db.models import F, QuerySet
from django.utils import timezone

from common import rate_limit
from integrations.context import ActionContext, ConnectionInfo
from integrations.errors import ActionError, TransientError
from integrations.models import Connection, ConnectionHealth

State = ConnectionHealth.State
# Kinds of transient error that say the vendor is unwell (429 says it is fine but busy).
UNHEALTHY_KINDS = frozenset({"http_status", "timeout", "connection", "transient"})


def _row(info: ConnectionInfo) -> ConnectionHealth | None:
    health = ConnectionHealth.objects.filter(connection__name=info.name).first()
    if health is None:
        connection = Connection.objects.filter(name=info.name).first()
        if connection is None:  # an ad-hoc connection (tests): nothing to share
            return None
        health, _ = ConnectionHealth.objects.get_or_create(connection=connection)
    return health


def admit(ctx: ActionContext, info: ConnectionInfo) -> None:
    """Let this attempt use the connection, or raise why it must wait."""
    health = _row(info)
    if health is None:
        return
    # The rate limit first: an attempt it defers must not hold the half-open probe.
    if info.rate_limit_per_minute:
        _take_rate_slot(ctx, health, info.rate_limit_per_minute)
    _check_circuit(health, info)


def _check_circuit(health: ConnectionHealth, info: ConnectionInfo) -> None:
    now = time.time()
    rows = ConnectionHealth.objects.filter(pk=health.pk)
    if health.state == State.CLOSED:
        return
    cooldown = info.circuit_cooldown_seconds
    since = now - (health.opened_at or 0.0)
    if _take_probe(rows, health, now, since, cooldown):
        return
    rows.update(requests_refused=F("requests_refused") + 1)
    wait = max(1.0, cooldown - since) if health.state == State.OPEN else max(1.0, cooldown / 2)
    raise TransientError(
        f"connection {info.name!r} is failing: its circuit is {health.state.replace('_', '-')} "
        f"after {health.consecutive_failures} consecutive failures ({health.last_error or 'no detail'}); "
        f"trying again in {wait:.0f}s",
        kind="circuit_open",
        retry_after=wait,
        details={"request_sent": False},
    )


def _take_probe(rows: QuerySet[ConnectionHealth], health: ConnectionHealth, now: float,
                since: float, cooldown: float) -> bool:  # fmt: skip
    """Become the attempt that probes a failing vendor, if it is time and nobody else is."""
    if health.state == State.OPEN and since >= cooldown:
        # The first attempt after the cool-down is the probe; the others keep waiting.
        return bool(rows.filter(state=State.OPEN, opened_at=health.opened_at).update(
            state=State.HALF_OPEN, probe_started_at=now
        ))  # fmt: skip
    if health.state == State.HALF_OPEN and now - (health.probe_started_at or 0.0) >= cooldown:
        # The probe never reported (its worker died): another attempt probes instead.
        return bool(rows.filter(state=State.HALF_OPEN, probe_started_at=health.probe_started_at)
                    .update(probe_started_at=now))  # fmt: skip
    return False


def _take_rate_slot(ctx: ActionContext, health: ConnectionHealth, per_minute: int) -> None:
    rows = ConnectionHealth.objects.filter(pk=health.pk)
    wait = rate_limit.take_slot(rows, per_minute)
    if wait is None:
        return
    rows.update(requests_deferred=F("requests_deferred") + 1)
    # Spread the waiters over the next few slots rather than waking them all at once.
    wait += random.uniform(0, 60.0 / per_minute * 4)  # noqa: S311
    raise ctx.poll_again(
        wait, ctx.progress, f"connection rate limit ({per_minute}/min): waiting for a free slot"
    )


def record_success(info: ConnectionInfo) -> None:
    """The vendor answered (any status that is not a transient failure)."""
    rows = ConnectionHealth.objects.filter(connection__name=info.name)
    rows.exclude(state=State.CLOSED, consecutive_failures=0).update(
        state=State.CLOSED, consecutive_failures=0, opened_at=None, probe_started_at=None,
        last_success_at=timezone.now(),
    )  # fmt: skip


def record_failure(info: ConnectionInfo, error: ActionError) -> None:
    """A failure: transient ones that say the vendor is unwell count toward opening."""
    answered = error.details.get("status_code") is not None
    if not answered and error.kind not in ("timeout", "connection"):
        return  # refused before any request went out (validation, SSRF, fenced): no news
    busy = error.details.get("status_code") == 429  # alive, only asking us to slow down
    if not error.retryable or error.kind not in UNHEALTHY_KINDS or busy:
        record_success(info)
        return
    health = _row(info)
    if health is None:
        return
    now = time.time()
    rows = ConnectionHealth.objects.filter(pk=health.pk)
    rows.update(consecutive_failures=F("consecutive_failures") + 1,
                last_error=error.message[:300], last_failure_at=timezone.now())  # fmt: skip
    # A failed probe opens the circuit again; enough failures in a row open a closed one.
    rows.filter(state=State.HALF_OPEN).update(
        state=State.OPEN, opened_at=now, probe_started_at=None, times_opened=F("times_opened") + 1
    )
    rows.filter(state=State.CLOSED, consecutive_failures__gte=info.circuit_failures).update(
        state=State.OPEN, opened_at=now, times_opened=F("times_opened") + 1
    )


def describe(connection: Connection) -> dict[str, object]:
    """The connection's health as the API shows it."""
    health = ConnectionHealth.objects.filter(connection=connection).first()
    state = health.state if health else State.CLOSED
    return {
        "circuit": state,
        "consecutive_failures": health.consecutive_failures if health else 0,
        "circuit_opened_at": health.opened_at if health else None,
        "times_opened": health.times_opened if health else 0,
        "requests_refused": health.requests_refused if health else 0,
        "requests_deferred": health.requests_deferred if health else 0,
        "last_error": health.last_error if health else "",
        "last_failure_at": health.last_failure_at if health else None,
        "last_success_at": health.last_success_at if health else None,
    }
