"""Exporting audit events as JSON Lines or CSV, streamed in constant memory.

Events go out in id order, read in pages by id (a keyset, so each page is an index range
scan however far in the export is). A JSON line holds every field the event's hash covers,
with the time written exactly as hashed, so each line can be re-verified on its own. CSV
is for reading in a spreadsheet: a cell that a spreadsheet would run as a formula is
prefixed with an apostrophe (OWASP's advice on CSV injection), so only the JSON Lines
export is byte-faithful.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, Final

from django.db.models import QuerySet

from audit.hashing import canonical_json, format_timestamp
from audit.models import AuditEvent

PAGE: Final = 2000
FIELDS: Final = ("id", "stream", "seq", "created_at", "actor", "kind", "run_id", "step_id",
                 "playbook", "payload", "prev_hash", "hash")  # fmt: skip
FORMATS: Final = {"jsonl": "application/jsonl", "csv": "text/csv"}
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def events_by_id(events: QuerySet[AuditEvent]) -> Iterator[AuditEvent]:
    """Every event of `events`, in id order, a page of PAGE at a time."""
    after = 0
    while True:
        page = list(events.filter(id__gt=after).order_by("id")[:PAGE])
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].pk


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def exported(event: AuditEvent) -> dict[str, Any]:
    """An event as one export record."""
    return {
        "id": event.pk,
        **event.hashed_document(),
        "created_at": format_timestamp(event.created_at),
        "hash": event.hash,
    }


def jsonl(events: QuerySet[AuditEvent]) -> Iterator[bytes]:
    for event in events_by_id(events):
        yield (canonical_json(exported(event)) + "\n").encode()


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = canonical_json(value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def csv_rows(events: QuerySet[AuditEvent]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for n, event in enumerate(events_by_id(events)):
        record = exported(event)
        writer.writerow([_cell(record[name]) for name in FIELDS])
        if n % 100 == 99:  # a chunk of rows at a time, not a write per row
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def export(events: QuerySet[AuditEvent], file_format: str) -> Iterator[bytes]:
    """The events in `file_format` ("jsonl" or "csv"), as chunks of bytes."""
    if file_format == "jsonl":
        return jsonl(events)
    if file_format == "csv":
        return csv_rows(events)
    raise ValueError(f"unknown export format {file_format!r}; use one of: {', '.join(FORMATS)}")
