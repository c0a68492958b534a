"""`manage.py audit_verify [--stream S ...]`: exit 0 when every chain and digest verifies, else 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.bundle_verify import verify_bundle
from audit.digest_verify import DIGESTS
from audit.signing import BadKey, public_key_from_text
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
        parser.add_argument(
            "--bundle", metavar="FILE", help="verify an evidence bundle offline, not the database"
        )
        parser.add_argument(
            "--public-key",
            metavar="PEM",
            help="with --bundle: the public key (PEM file) it must be signed with",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["bundle"]:
            self._verify_bundle(Path(options["bundle"]), options["public_key"])
            return
        if options["public_key"]:
            raise CommandError("--public-key goes with --bundle")
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

    def _verify_bundle(self, bundle: Path, key_file: str | None) -> None:
        if not bundle.is_file():
            raise CommandError(f"{bundle}: no such file")
        key = None
        if key_file:
            try:
                key = public_key_from_text(Path(key_file).read_text(), key_file)
            except (OSError, BadKey) as exc:
                raise CommandError(f"--public-key: {exc}") from None
        result = verify_bundle(bundle, key)
        if not result.ok:
            raise CommandError(f"audit: bundle {bundle} does not verify: {result.problem}",
                               returncode=1)  # fmt: skip
        self.stdout.write(
            f"audit: bundle of {result.stream} verifies: {result.events_checked} events, "
            f"{result.digests_checked} signed digests"
        )
        if result.key_from_bundle:
            self.stderr.write(
                "audit: checked against the key inside the bundle, which shows it is intact but "
                "not who made it; give --public-key with the installation's key for that"
            )
