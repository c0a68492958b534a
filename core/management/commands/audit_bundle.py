"""`manage.py audit_bundle RUN --output FILE`: write a run's evidence bundle (zip)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.evidence import write_run_bundle
from core.models import Run


class Command(BaseCommand):
    help = "Write a run's evidence bundle: its audit events, signed digests, definition, report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run", type=int, help="the run's id")
        parser.add_argument("--output", required=True, help="the zip file to write")

    def handle(self, *args: Any, **options: Any) -> None:
        run = Run.objects.select_related("playbook", "version").filter(pk=options["run"]).first()
        if run is None:
            raise CommandError(f"there is no run {options['run']}")
        with open(options["output"], "wb") as target:
            manifest = write_run_bundle(run, target, actor="cli:audit_bundle")
        self.stdout.write(f"audit: run {run.pk}'s evidence bundle written to {options['output']} "
                          f"({len(manifest['files'])} files, key {manifest['key_id']})")  # fmt: skip
