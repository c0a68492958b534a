"""`manage.py audit_digest`: sign a digest of the audit streams now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.digests import make_digest


class Command(BaseCommand):
    help = "Sign a digest over the heads of the audit streams that moved since the last one."

    def handle(self, *args: Any, **options: Any) -> None:
        digest = make_digest()
        self.stdout.write(
            f"audit: digest #{digest.seq} lists {digest.head_count} stream heads "
            f"(key {digest.key_id}, hash {digest.hash})"
        )
