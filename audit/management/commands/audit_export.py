"""`manage.py audit_export [--run ID] [--since T] [--until T] [--format jsonl|csv] [--output F]`."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.dateparse import parse_datetime

from audit.events import record_event
from audit.export import FORMATS, export, last_event_id
from audit.models import AuditEvent


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    moment = parse_datetime(text)
    if moment is None or moment.tzinfo is None:
        raise CommandError(
            f"{option} must be an ISO 8601 time with a zone, e.g. 2026-01-31T00:00:00Z"
        )
    return moment


class Command(BaseCommand):
    help = "Export audit events (all, one run's or a time range's) as JSON Lines or CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run", type=int, help="only this run's events")
        parser.add_argument("--since", help="events at or after this time (ISO 8601)")
        parser.add_argument("--until", help="events before this time (ISO 8601)")
        parser.add_argument("--format", choices=sorted(FORMATS), default="jsonl")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        events = AuditEvent.objects.all()
        if options["run"] is not None:
            events = events.filter(run_id=options["run"])
        if since := _moment(options["since"], "--since"):
            events = events.filter(created_at__gte=since)
        if until := _moment(options["until"], "--until"):
            events = events.filter(created_at__lt=until)
        filters = {k: options[k] for k in ("run", "since", "until") if options[k] is not None}
        events = events.filter(id__lte=last_event_id())  # not its own record, nor later ones
        with transaction.atomic():
            record_event(stream="system", kind="audit.exported", actor="cli:audit_export",
                         payload={"format": options["format"], "filters": filters})  # fmt: skip
        out = open(options["output"], "wb") if options["output"] else sys.stdout.buffer  # noqa: SIM115
        try:
            for chunk in export(events, options["format"]):
                out.write(chunk)
        finally:
            if options["output"]:
                out.close()
            else:
                out.flush()
