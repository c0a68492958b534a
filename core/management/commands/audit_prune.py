"""`manage.py audit_prune`: prune audit events past retention, leaving signed tombstones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.retention import prune_audit
from core.audit_retention import open_runs


class Command(BaseCommand):
    help = (
        "Prune audit events older than the retention period (BULWARK_AUDIT_RETENTION_DAYS), "
        "except runs on legal hold and open runs; each pruned range leaves a signed tombstone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, help="prune events older than this many days "
                            "instead of BULWARK_AUDIT_RETENTION_DAYS")  # fmt: skip
        parser.add_argument("--dry-run", action="store_true",
                            help="report what would be pruned and change nothing")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        days = (
            options["days"]
            if options["days"] is not None
            else settings.BULWARK_AUDIT_RETENTION_DAYS
        )
        if days <= 0:
            raise CommandError("retention is off (0 days): nothing is pruned; pass --days N")
        before = timezone.now() - timedelta(days=days)
        reason, actor = f"retention: older than {days} days", "cli:audit_prune"
        result = prune_audit(before, keep_runs=open_runs, reason=reason, actor=actor,
                             dry_run=options["dry_run"])  # fmt: skip
        verb = "would prune" if options["dry_run"] else "pruned"
        self.stdout.write(
            f"audit: {verb} {result.events} events of {result.streams} streams older than "
            f"{days} days; kept {result.held} for legal holds and {result.kept_open} open runs"
        )
        if result.refused:
            for stream, why in result.refused:
                self.stderr.write(f"audit: not pruned: {stream}: {why}")
            raise CommandError(f"{len(result.refused)} streams were not pruned: they do not verify")
