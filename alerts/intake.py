"""Accepting a delivery: authenticate, parse, normalise, deduplicate, store; all of it, or
nothing. The answer is decided here; the view only translates it to HTTP."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from alerts.authentication import Unauthenticated, verify
from alerts.mappings import MappingError, Normalised, normalise
from alerts.models import AlertSource, Delivery
from alerts.store import count, store
from common import rate_limit
from integrations.crypto import DecryptionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    outcome: str  # accepted | duplicate | the reason for a refusal
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def take_slot(source: AlertSource) -> float | None:
    """None when a delivery may go in under the source's rate limit, else seconds to wait."""
    if not source.rate_limit_per_minute:
        return None
    return rate_limit.take_slot(
        AlertSource.objects.filter(pk=source.pk), source.rate_limit_per_minute
    )


def normalise_for(source: AlertSource, payload: Any) -> list[Normalised]:
    if source.mapping:
        from alerts.mappings.custom import normalise_custom

        return normalise_custom(source.mapping, payload)
    return normalise(source.format, payload)


_sources: dict[str, tuple[float, AlertSource | None, dict[str, Any]]] = {}
SOURCE_CACHE_SECONDS = 2.0


def _source(slug: str) -> tuple[AlertSource | None, dict[str, Any]]:
    """The enabled source and its decrypted secrets, kept for SOURCE_CACHE_SECONDS: a
    source's changes (a rotation, disabling it) take effect within that long."""
    cached = _sources.get(slug)
    if cached and time.monotonic() - cached[0] < SOURCE_CACHE_SECONDS:
        return cached[1], cached[2]
    source = AlertSource.objects.filter(slug=slug, enabled=True).first()
    try:
        secrets = source.secrets if source else {}
    except DecryptionError:
        secrets = {}
    if len(_sources) > 1000:
        _sources.clear()
    _sources[slug] = (time.monotonic(), source, secrets)
    return source, secrets


def forget_source(slug: str) -> None:
    """Drop this process's cached copy (the source changed here)."""
    _sources.pop(slug, None)


def refuse(slug: str, status: int, outcome: str, message: str) -> Answer:
    log.warning("alert delivery to %s refused (%s): %s", slug, outcome, message)
    count(slug, outcome)
    return Answer(status, outcome, {"error": message})


def accept(slug: str, headers: dict[str, str], body: bytes, url_token: str = "") -> Answer:
    """The whole of a delivery's intake; durable before an accepted answer is returned."""
    source, secrets = _source(slug)
    if source is None:
        return refuse(slug, 404, "unknown_source", f"no alert source {slug!r}")
    if len(body) > source.max_body_bytes:
        return refuse(slug, 413, "too_large", f"the body is over {source.max_body_bytes} bytes")
    try:
        sender_id = verify(source.auth, secrets, headers, body, source.auth_options, url_token)
    except Unauthenticated as exc:
        return refuse(slug, 401, "unauthenticated", str(exc))
    wait = take_slot(source)
    if wait is not None:
        answer = refuse(
            slug, 429, "rate_limited", f"over {source.rate_limit_per_minute} deliveries a minute"
        )
        return Answer(
            429, answer.outcome, answer.body, {"Retry-After": str(max(1, math.ceil(wait)))}
        )
    try:
        text = body.decode("utf-8")  # JSON between systems is UTF-8 (RFC 8259 §8.1)
    except UnicodeDecodeError as exc:
        return refuse(slug, 400, "malformed_json", f"the body is not UTF-8: {exc}")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        return refuse(slug, 400, "malformed_json", f"the body is not JSON: {exc}")
    try:
        alerts = normalise_for(source, payload)
    except MappingError as exc:
        return refuse(slug, 400, "bad_payload", f"not a {source.format} payload: {exc}")
    delivery_id = sender_id or "sha256:" + hashlib.sha256(body).hexdigest()
    stored = store(source, delivery_id[:200], text, alerts)
    if stored is None:
        count(slug, "duplicate")
        return Answer(
            200, "duplicate", _answer(delivery_id, _earlier(source, delivery_id), [], True)
        )
    # Stored and committed: now the triggers. New alerts only: later copies attach to an
    # alert that was matched already. When no trigger named the source a moment ago, the
    # scheduler closes these alerts in bulk (or matches them, if a version was published
    # since).
    fresh = [pk for pk, copies in stored if copies == 1]
    runs = _match(fresh) if fresh and source.slug in sources_with_triggers() else []
    alert_ids = list(dict.fromkeys(pk for pk, _ in stored))  # a group may name one twice
    return Answer(202, "accepted", _answer(delivery_id, alert_ids, runs, False))


def _answer(
    delivery_id: str, alerts: list[int], runs: list[int], duplicate: bool
) -> dict[str, Any]:
    """SPEC §5's `{"alert", "runs", "duplicate"}`, with every alert of a grouped delivery."""
    return {"alert": alerts[0] if alerts else None, "alerts": alerts, "runs": runs,
            "duplicate": duplicate, "delivery": delivery_id}  # fmt: skip


def _earlier(source: AlertSource, delivery_id: str) -> list[int]:
    """The alerts the first delivery with this id stored."""
    links = Delivery.alerts.through.objects.filter(
        delivery__source=source, delivery__delivery_id=delivery_id[:200]
    )
    return sorted(links.values_list("alert_id", flat=True))


def _match(alert_ids: list[int]) -> list[int]:
    """The runs the alerts' triggers started."""
    from alerts.triggers import match_alert

    runs: list[int] = []
    for alert_id in alert_ids:
        try:
            runs += match_alert(alert_id)
        except Exception:  # the scheduler matches it later; the delivery stands
            log.exception("alert %s: trigger matching failed; the scheduler will retry", alert_id)
    return runs


_triggered: tuple[float, frozenset[str]] = (0.0, frozenset())
TRIGGER_CACHE_SECONDS = 2.0


def sources_with_triggers() -> frozenset[str]:
    """Slugs that some published version's triggers name, cached for TRIGGER_CACHE_SECONDS
    on the request path (the scheduler asks afresh, so a version published meanwhile
    still gets its alerts)."""
    global _triggered
    at, slugs = _triggered
    if time.monotonic() - at < TRIGGER_CACHE_SECONDS:
        return slugs
    slugs = triggered_sources()
    _triggered = (time.monotonic(), slugs)
    return slugs


def triggered_sources() -> frozenset[str]:
    from playbooks.models import PlaybookVersion

    definitions = PlaybookVersion.objects.filter(state=PlaybookVersion.State.PUBLISHED).values_list(
        "definition", flat=True
    )
    slugs = frozenset(
        t["source"] for d in definitions for t in (d.get("triggers") or []) if t.get("source")
    )
    return slugs
