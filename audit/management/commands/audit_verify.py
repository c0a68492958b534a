"""`manage.py audit_verify [--stream S ...]`: exit 0 when every chain and digest verifies, else 1."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.digest_verify import DIGESTS
from audit.verify import verify_trail


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chains and signed digests; exit 1 and name the first "
        "broken link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stream",
            action="append",
            dest="streams",
            metavar="STREAM",
            help='verify only this stream, e.g. "run:42" (repeatable)',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = verify_trail(options["streams"])
        problem = result.first_problem
        if problem is not None:
            if problem["stream"] == DIGESTS:
                where = f"digest #{problem['seq']}"
                where += f" (id {problem['id']})" if problem["id"] is not None else " (missing)"
                raise CommandError(f"audit: {where}: {problem['reason']}", returncode=1)
            event = f"event id {problem['id']}" if problem["id"] is not None else "missing event"
            raise CommandError(
                f"audit: chain broken in stream {problem['stream']} at seq {problem['seq']} "
                f"({event}): {problem['reason']}",
                returncode=1,
            )
        self.stdout.write(
            f"audit: {result.events_checked} events in {result.streams_checked} streams "
            f"and {result.digests_checked} digests verify"
        )
