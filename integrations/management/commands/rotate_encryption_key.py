"""`manage.py rotate_encryption_key`: re-encrypt connection credentials with the first key.

Rotation: put the new key first in BULWARK_ENCRYPTION_KEY (comma-separated, old keys
after it), restart, run this, then drop the old keys."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from integrations.connections import rotate_credentials


class Command(BaseCommand):
    help = "Re-encrypt every connection's credentials with the first BULWARK_ENCRYPTION_KEY."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated, unreadable = rotate_credentials(actor="system:rotate_encryption_key")
        self.stdout.write(f"re-encrypted the credentials of {rotated} connection(s)")
        if unreadable:
            raise CommandError(
                f"no configured key decrypts {', '.join(unreadable)}: add the key they were "
                "encrypted with to BULWARK_ENCRYPTION_KEY and run this again"
            )
