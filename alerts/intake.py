"""Accepting a delivery: authenticate, parse, normalise, deduplicate, store; all of it, or
nothing. The answer is decided here; the view only translates it to HTTP."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from alerts.authentication import Unauthenticated, verify
from alerts.mappings import MappingError, Normalised, normalise
from alerts.models import Alert, AlertSource, Delivery, IntakeCounter
from integrations.crypto import DecryptionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    outcome: str  # accepted | duplicate | the reason for a refusal
    body: dict[str, Any] = field(default_factory=dict)


def count(source: str, outcome: str) -> None:
    """One more delivery of this outcome (metrics); never fails the request."""
    try:
        with transaction.atomic():
            updated = IntakeCounter.objects.filter(source=source, outcome=outcome).update(
                count=F("count") + 1
            )
            if not updated:
                IntakeCounter.objects.create(source=source, outcome=outcome, count=1)
    except IntegrityError:
        IntakeCounter.objects.filter(source=source, outcome=outcome).update(count=F("count") + 1)


def refuse(slug: str, status: int, outcome: str, message: str) -> Answer:
    log.warning("alert delivery to %s refused (%s): %s", slug, outcome, message)
    count(slug, outcome)
    return Answer(status, outcome, {"error": message})


def fingerprint(source: AlertSource, alert: Normalised) -> str:
    material = json.dumps([source.pk, *alert.dedup_key], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def _lock(fp: str) -> None:
    """Serialise deliveries of one fingerprint (a storm of copies), not of the whole source."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(fp[:15], 16)])


def accept(slug: str, headers: dict[str, str], body: bytes) -> Answer:
    """The whole of a delivery's intake; durable before an accepted answer is returned."""
    source = AlertSource.objects.filter(slug=slug, enabled=True).first()
    if source is None:
        return refuse(slug, 404, "unknown_source", f"no alert source {slug!r}")
    if len(body) > source.max_body_bytes:
        return refuse(slug, 413, "too_large", f"the body is over {source.max_body_bytes} bytes")
    try:
        sender_id = verify(source.auth, source.secrets, headers, body)
    except Unauthenticated as exc:
        return refuse(slug, 401, "unauthenticated", str(exc))
    except DecryptionError:
        return refuse(slug, 401, "unauthenticated", "the source's secret cannot be decrypted")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return refuse(slug, 400, "malformed_json", f"the body is not JSON: {exc}")
    try:
        alerts = normalise(source.format, payload)
    except MappingError as exc:
        return refuse(slug, 400, "bad_payload", f"not a {source.format} payload: {exc}")
    delivery_id = sender_id or "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(source=source, delivery_id=delivery_id[:200],
                                               body=body.decode("utf-8", errors="replace"))  # fmt: skip
            stored = [_store(source, alert) for alert in alerts]
            delivery.alerts.add(*stored)
            # New alerts only: later copies attach to an alert that was matched already.
            fresh = [a.pk for a in stored if a.count == 1]
            transaction.on_commit(lambda: _match(fresh))
    except IntegrityError:
        count(slug, "duplicate")
        return Answer(200, "duplicate", {"duplicate": True, "delivery": delivery_id})
    count(slug, "accepted")
    return Answer(202, "accepted", {"delivery": delivery_id, "alerts": [a.pk for a in stored]})


def _match(alert_ids: list[int]) -> None:
    from alerts.triggers import match_alert

    for alert_id in alert_ids:
        try:
            match_alert(alert_id)
        except Exception:  # the scheduler matches it later; the delivery stands
            log.exception("alert %s: trigger matching failed; the scheduler will retry", alert_id)


def _store(source: AlertSource, alert: Normalised) -> Alert:
    """A new alert, or the same one seen again within the source's dedup window."""
    fp = fingerprint(source, alert)
    _lock(fp)
    now = timezone.now()
    window = now - timedelta(seconds=source.dedup_window_seconds)
    existing = (
        Alert.objects.select_for_update()
        .filter(source=source, fingerprint=fp, last_seen_at__gte=window)
        .order_by("-last_seen_at")
        .first()
    )
    if existing is not None:
        existing.count += 1
        existing.last_seen_at = now
        existing.status = alert.status
        existing.save(update_fields=["count", "last_seen_at", "status"])
        return existing
    return Alert.objects.create(
        source=source, fingerprint=fp, external_id=alert.external_id[:300], title=alert.title,
        severity=alert.severity, status=alert.status, occurred_at=alert.occurred_at,
        entities=alert.entities, raw=alert.raw, first_seen_at=now, last_seen_at=now,
    )  # fmt: skip
