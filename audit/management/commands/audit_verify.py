"""`manage.py audit_verify [--stream S ...]`: exit 0 when every chain verifies, else 1."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.verify import verify_chains


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains; exit 1 and name the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stream",
            action="append",
            dest="streams",
            metavar="STREAM",
            help='verify only this stream, e.g. "run:42" (repeatable)',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = verify_chains(options["streams"])
        problem = result.first_problem
        if problem is not None:
            event = f"event id {problem['id']}" if problem["id"] is not None else "missing event"
            raise CommandError(
                f"audit: chain broken in stream {problem['stream']} at seq {problem['seq']} "
                f"({event}): {problem['reason']}",
                returncode=1,
            )
        self.stdout.write(
            f"audit: {result.events_checked} events in {result.streams_checked} streams verify"
        )
