"""`manage.py lab`: serve every vendor simulator, for demos, tests and trying playbooks."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from integrations.lab.server import Lab


class Command(BaseCommand):
    help = "Serve the vendor simulators (CrowdStrike, Slack, Jira, …), each under /<vendor>/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.BULWARK_LAB_PORT)
        parser.add_argument("--connect", action="store_true",
                            help="create or repoint the lab-<vendor> connections to this lab")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        lab = Lab(options["host"], options["port"], quiet=False, smtp_port=options["port"] + 1,
                  state_dir=settings.VAR_DIR / "lab")  # fmt: skip
        if options["connect"]:
            from integrations.lab.connections import ensure_lab_connections

            names = ensure_lab_connections(lab.url, actor="system:lab", smtp=lab.smtp_settings())
            self.stdout.write(
                f"connections: {', '.join(names) or 'none (other connections exist)'}"
            )
        for vendor in lab.sims:
            self.stdout.write(f"{vendor:12} {lab.base_url(vendor)}")
        self.stdout.write(f"{'email':12} {lab.smtp.url} (STARTTLS; CA {lab.smtp.cert_file})")
        self.stdout.write(
            f"Bulwark lab on {lab.url}; faults and recorded calls under /<vendor>/_lab/"
        )
        try:
            lab.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            lab.server.server_close()
