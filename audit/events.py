"""Recording audit events: the one way rows get into the audit trail."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from django.db import connection, models
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.duration import duration_iso_string

from audit.hashing import ZERO_HASH, canonical_json
from audit.models import AuditEvent, AuditStreamHead
from audit.redaction import redact
from common.prepared import column_type, hot_cursor, on_postgresql, recordset


@dataclass(frozen=True)
class NewEvent:
    """An event to record; the chain fields (seq, time, hashes) are added on recording."""

    stream: str  # "run:<id>", "playbook:<name>", "system"
    kind: str  # dotted, e.g. "run.started", "step.succeeded", "connection.created"
    actor: str  # "user:<username>", "system", "worker:<host>:<pid>", "source:<slug>"
    payload: Mapping[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    step_id: str | None = None
    playbook: str | None = None


def record_events(events: Sequence[NewEvent]) -> list[AuditEvent]:
    """Append events to their streams, in order, inside the caller's transaction.

    Each stream's head row is locked once, so concurrent writers to one stream queue up
    instead of forking its chain. Returns the saved events in the order given.
    """
    if not events:
        return []
    if not connection.in_atomic_block:
        raise TransactionManagementError(
            "record_events() must run inside the caller's transaction.atomic(), "
            "so the audit trail commits or rolls back with the change it records"
        )
    rows = [_row(event) for event in events]
    streams = sorted({row.stream for row in rows})
    now = timezone.now()
    if on_postgresql() and len(streams) == 1:
        known = _known_heads.get(streams[0])
        if known is not None and _append_at_known_head(rows, streams[0], known, now):
            return rows
    heads = _chain(rows, _lock_heads(streams), now)
    _insert(rows)
    with hot_cursor() as cursor:
        if on_postgresql():
            for stream, (seq, digest) in heads.items():
                update = (
                    f"UPDATE {HEADS} SET seq = %s, hash = %s, changed = {_XID} WHERE stream = %s"  # noqa: S608
                )
                cursor.execute(update, [seq, digest, stream])
        else:
            # SQLite has one writer at a time, so event ids are in commit order.
            last_id = {row.stream: row.pk for row in rows}
            for stream, (seq, digest) in heads.items():
                update = f"UPDATE {HEADS} SET seq = %s, hash = %s, changed = %s WHERE stream = %s"  # noqa: S608
                cursor.execute(update, [seq, digest, last_id[stream], stream])
    _remember(heads)
    return rows


# The writing transaction's id, which a digest's watermark is compared with.
_XID = "pg_current_xact_id()::text::bigint"


def _chain(
    rows: list[AuditEvent], heads: dict[str, tuple[int, str]], now: datetime
) -> dict[str, tuple[int, str]]:
    """Give each row its place in its stream's chain after `heads`; returns the new heads."""
    heads = dict(heads)
    for row in rows:
        seq, prev = heads[row.stream]
        row.seq = seq + 1
        row.created_at = now
        row.prev_hash = prev
        row.hash = row.compute_hash()
        heads[row.stream] = (row.seq, row.hash)
    return heads


# The head each stream had when this process last appended to it. A run's transitions
# mostly follow each other in one process, so its next events can go as one statement
# that moves the head only if it is still there (compare-and-set) and inserts the rows
# only if it moved: three round trips become one. When another process appended
# meanwhile (or a transaction that appended rolled back), nothing is written, and the
# locking path below runs instead.
_known_heads: dict[str, tuple[int, str]] = {}
_KNOWN_HEADS_MAX = 10_000


def _remember(heads: dict[str, tuple[int, str]]) -> None:
    if len(_known_heads) > _KNOWN_HEADS_MAX:
        _known_heads.clear()
    _known_heads.update(heads)


def _append_at_known_head(
    rows: list[AuditEvent], stream: str, known: tuple[int, str], now: datetime
) -> bool:
    """Append `rows` (all of `stream`) if its head is still `known`; False if it moved."""
    heads = _chain(rows, {stream: known}, now)
    seq, digest = heads[stream]
    source, param = _pg_rows(rows)
    sql = _CAS + _INSERT_SELECT.format(source=source) + " WHERE EXISTS (SELECT 1 FROM head)"  # noqa: S608 - fixed names
    with hot_cursor() as cursor:
        cursor.execute(sql + _RETURNING, [seq, digest, stream, known[0], known[1], param])
        ids = {(s, n): pk for pk, s, n in cursor.fetchall()}
    if not ids:
        _known_heads.pop(stream, None)
        return False
    for row in rows:
        row.pk = ids[(row.stream, row.seq)]
        row._state.adding = False
    _remember(heads)
    return True


def record_event(
    *,
    stream: str,
    kind: str,
    actor: str,
    payload: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    step_id: str | None = None,
    playbook: str | None = None,
) -> AuditEvent:
    """Append one event; see record_events."""
    new = NewEvent(
        stream=stream,
        kind=kind,
        actor=actor,
        payload=payload if payload is not None else {},
        run_id=run_id,
        step_id=step_id,
        playbook=playbook,
    )
    return record_events([new])[0]


# Raw SQL: these statements run in every step's transaction, and the ORM's compile cost
# (about a millisecond each on a small machine) would dominate it.
HEADS = AuditStreamHead._meta.db_table
EVENTS = AuditEvent._meta.db_table
EVENT_COLUMNS = ("stream", "seq", "created_at", "actor", "kind", "run_id", "step_id", "playbook",
                 "payload", "prev_hash", "hash")  # fmt: skip


def _lock_heads(streams: list[str]) -> dict[str, tuple[int, str]]:
    """Lock the head row of each stream, in sorted order so that writers queue, not deadlock.

    A call that also starts new streams locks those after the existing ones; should two
    such multi-stream calls cross, PostgreSQL aborts one with a deadlock error rather than
    forking a chain.
    """
    heads = _select_for_update(streams)
    missing = [stream for stream in streams if stream not in heads]
    if missing:
        # A new stream: create its head, tolerating a concurrent writer creating it first
        # (the insert then waits for that writer's commit), and lock it.
        with hot_cursor() as cursor:
            for stream in missing:
                cursor.execute(
                    f"INSERT INTO {HEADS} (stream, seq, hash, changed) VALUES (%s, 0, %s, 0) ON CONFLICT (stream) DO NOTHING",  # noqa: S608
                    [stream, ZERO_HASH],
                )
        heads.update(_select_for_update(missing))
    return heads


def _select_for_update(streams: list[str]) -> dict[str, tuple[int, str]]:
    if on_postgresql():
        # A fixed text, so it is prepared; equality for one stream, so its plan is an
        # index scan however the table has grown.
        many = len(streams) > 1
        match = "= ANY(%s::text[])" if many else "= %s"
        query = (
            f"SELECT stream, seq, hash FROM {HEADS} WHERE stream {match} ORDER BY stream FOR UPDATE"  # noqa: S608
        )
        params: list[Any] = [streams if many else streams[0]]
    else:
        marks = ", ".join(["%s"] * len(streams))
        query = f"SELECT stream, seq, hash FROM {HEADS} WHERE stream IN ({marks}) ORDER BY stream"  # noqa: S608
        params = streams
    with hot_cursor() as cursor:
        cursor.execute(query, params)
        return {stream: (seq, digest) for stream, seq, digest in cursor.fetchall()}


def _insert(rows: list[AuditEvent]) -> None:
    """One INSERT for all rows; sets each row's id."""
    if on_postgresql():
        _insert_recordset(rows)
        return
    fields = [AuditEvent._meta.get_field(name) for name in EVENT_COLUMNS]
    values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    params = [
        f.get_db_prep_save(getattr(row, f.name), connection)  # type: ignore[union-attr]
        for row in rows
        for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EVENTS} ({', '.join(EVENT_COLUMNS)}) VALUES {values} RETURNING id",  # noqa: S608
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False


# On PostgreSQL the rows go as one JSON recordset (common.prepared.recordset): the
# statement's text stays the same whatever the number of rows, so it is prepared once.
def _pg_rows(rows: list[AuditEvent]) -> tuple[str, str]:
    columns = [(name, column_type(AuditEvent, name)) for name in EVENT_COLUMNS]
    values = [[*(getattr(row, name) for name in EVENT_COLUMNS), n] for n, row in enumerate(rows)]
    return recordset([*columns, ("ord", "integer")], values)


_INSERT_SELECT = (
    f"INSERT INTO {EVENTS} ({', '.join(EVENT_COLUMNS)}) "  # noqa: S608 - fixed names
    f"SELECT {', '.join(f'v.{c}' for c in EVENT_COLUMNS)} FROM {{source}}"
)
_RETURNING = " ORDER BY v.ord RETURNING id, stream, seq"
# Moves the head only if it is still where this process left it, and inserts the rows
# only if it moved.
_CAS = (
    f"WITH head AS (UPDATE {HEADS} SET seq = %s, hash = %s, changed = {_XID} "  # noqa: S608 - fixed names
    "WHERE stream = %s AND seq = %s AND hash = %s RETURNING stream) "
)


def _insert_recordset(rows: list[AuditEvent]) -> None:
    source, param = _pg_rows(rows)
    with hot_cursor() as cursor:
        cursor.execute(_INSERT_SELECT.format(source=source) + _RETURNING, [param])
        ids = {(stream, seq): pk for pk, stream, seq in cursor.fetchall()}
    for row in rows:
        row.pk = ids[(row.stream, row.seq)]
        row._state.adding = False


_MAX_LENGTHS = {
    field.name: field.max_length
    for field in AuditEvent._meta.fields
    if isinstance(field, models.CharField)
}


def _row(event: NewEvent) -> AuditEvent:
    for name in ("stream", "kind", "actor"):
        if not isinstance(getattr(event, name), str) or not getattr(event, name):
            raise ValueError(f"audit event {name} must be a non-empty string")
    for name, limit in _MAX_LENGTHS.items():
        text = getattr(event, name, None)
        if isinstance(text, str) and limit is not None and len(text) > limit:
            raise ValueError(f"audit event {name} is longer than {limit} characters")
    if event.run_id is not None and (
        isinstance(event.run_id, bool) or not isinstance(event.run_id, int)
    ):
        raise TypeError("audit event run_id must be an int or None")
    return AuditEvent(
        stream=event.stream,
        kind=event.kind,
        actor=event.actor,
        run_id=event.run_id,
        step_id=event.step_id,
        playbook=event.playbook,
        payload=clean_payload(event.payload),
    )


def clean_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with secrets redacted and every value made a plain JSON value.

    Dates and times become ISO 8601 strings, Decimal and UUID strings, timedeltas ISO 8601
    durations, enums their value, tuples lists and sets sorted lists. Anything else raises
    TypeError naming where in the payload it is.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"audit payload must be a mapping, not {type(payload).__name__}")
    result: dict[str, Any] = _jsonable(redact(payload), "payload")
    return result


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        # Vendor and alert text lands here; it must never make the audit write (and with it
        # the transition being recorded) fail. jsonb cannot hold NUL, nor UTF-8 a lone
        # surrogate: both become U+FFFD.
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        if _has_surrogate(value):
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"audit {where} is {value}, which JSON cannot represent")
        return value
    if isinstance(value, Mapping):
        return {_key(k, where): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [_jsonable(item, f"{where}[]") for item in value]
        return sorted(items, key=canonical_json)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_iso_string(value)
    if isinstance(value, Decimal | uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, Enum):
        return _jsonable(value.value, where)
    raise TypeError(
        f"audit {where} is a {type(value).__name__}, which is not JSON-serialisable; "
        "convert it to a str, number, list or dict first"
    )


def _key(key: Any, where: str) -> str:
    if isinstance(key, str):
        return _jsonable(key, f"{where} key")  # type: ignore[no-any-return]
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"audit {where} has a {type(key).__name__} key {key!r}; keys must be strings")
