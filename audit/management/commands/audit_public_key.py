"""`manage.py audit_public_key`: the PEM public key that verifies the audit digests."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.signing import current_public_key, public_pem


class Command(BaseCommand):
    help = "Print the Ed25519 public key (PEM) that verifies this installation's audit digests."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(public_pem(current_public_key()), ending="")
