"""Storing an accepted delivery with its alerts, all of it or nothing, and counting
deliveries for /metrics.

On PostgreSQL the whole store is one round trip: bulwark_store_delivery() (migration
0007) inserts the delivery, takes each fingerprint's advisory lock, attaches a copy to
its alert or inserts a new one, links them and counts the delivery, in the statement's
own transaction. A web thread then waits on the database once a delivery instead of
eight times. SQLite, which has one writer at a time and no such functions, does the
same through the ORM.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.mappings import Normalised
from alerts.models import Alert, AlertSource, Delivery
from common.prepared import hot_cursor, on_postgresql

# Rows each (source, outcome) counts on: see IntakeCounter.shard.
COUNTER_SHARDS = 16


def _shard() -> int:
    return random.randrange(COUNTER_SHARDS)  # noqa: S311 - spreads load, guards nothing


# One alert as stored: its id and how many copies it has now (1: new).
Stored = tuple[int, int]


def fingerprint(source: AlertSource, alert: Normalised) -> str:
    material = json.dumps([source.pk, *alert.dedup_key], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def count(source: str, outcome: str) -> None:
    """One more delivery of this outcome, in one statement on either database."""
    with hot_cursor() as cursor:
        cursor.execute(
            "INSERT INTO alerts_intakecounter (source, outcome, shard, count) "
            "VALUES (%s, %s, %s, 1) ON CONFLICT (source, outcome, shard) "
            "DO UPDATE SET count = alerts_intakecounter.count + 1",
            [source, outcome, _shard()],
        )


def store(
    source: AlertSource, delivery_id: str, body: str, alerts: list[Normalised]
) -> list[Stored] | None:
    """The alerts as stored, or None when this source has had this delivery id before
    (nothing is stored then, and the caller counts the duplicate)."""
    if on_postgresql():
        return _store_in_one_statement(source, delivery_id, body, alerts)
    try:
        with transaction.atomic():
            return _store_with_orm(source, delivery_id, body, alerts)
    except IntegrityError:
        return None


def _store_in_one_statement(
    source: AlertSource, delivery_id: str, body: str, alerts: list[Normalised]
) -> list[Stored] | None:
    rows = [
        {
            "fingerprint": fingerprint(source, alert),
            "external_id": alert.external_id[:300],
            "title": alert.title[:500],
            "severity": alert.severity,
            "status": alert.status,
            "occurred_at": alert.occurred_at,
            "entities": alert.entities,
            "raw": alert.raw,
        }
        for alert in alerts
    ]
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT bulwark_store_delivery(%s::bigint, %s::text, %s::text, %s::text, "
            "%s::jsonb, %s::integer, %s::integer, %s::timestamptz)",
            [source.pk, source.slug, delivery_id, body, _jsonb(rows),
             source.dedup_window_seconds, _shard(), timezone.now()],
        )  # fmt: skip
        (answer,) = cursor.fetchone()
    if answer is None:
        return None
    stored = json.loads(answer) if isinstance(answer, str) else answer
    return [(int(pk), int(copies)) for pk, copies in stored]


# A JSON \u0000 escape that is not itself escaped (\\u0000 is the text "\u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _jsonb(value: Any) -> str:
    """JSON for a jsonb parameter. jsonb cannot hold U+0000, which JSON allows in a
    string: it becomes U+FFFD, as an undecodable byte does (the verbatim body keeps it)."""
    text = json.dumps(value, default=_iso)
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _store_with_orm(
    source: AlertSource, delivery_id: str, body: str, alerts: list[Normalised]
) -> list[Stored]:
    delivery = Delivery.objects.create(source=source, delivery_id=delivery_id, body=body)
    stored = [_attach_or_create(source, alert) for alert in alerts]
    Delivery.alerts.through.objects.bulk_create(
        [Delivery.alerts.through(delivery_id=delivery.pk, alert_id=pk) for pk in {a.pk for a in stored}]
    )  # fmt: skip
    count(source.slug, "accepted")  # in the same transaction: one commit a delivery
    return [(a.pk, a.count) for a in stored]


def _attach_or_create(source: AlertSource, alert: Normalised) -> Alert:
    """A new alert, or the same one seen again within the source's dedup window. (SQLite's
    transactions begin IMMEDIATE: one delivery at a time, so no lock of its own.)"""
    fp = fingerprint(source, alert)
    now = timezone.now()
    window = now - timedelta(seconds=source.dedup_window_seconds)
    existing = (
        Alert.objects.filter(source=source, fingerprint=fp, last_seen_at__gte=window)
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
        source=source, fingerprint=fp, external_id=alert.external_id[:300], title=alert.title[:500],
        severity=alert.severity, status=alert.status, occurred_at=alert.occurred_at,
        entities=alert.entities, raw=alert.raw, first_seen_at=now, last_seen_at=now,
    )  # fmt: skip
