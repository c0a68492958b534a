"""`manage.py standalone`: web server, worker threads and scheduler in one process.

The embedded default (like `airflow standalone`): SQLite, dramatiq's in-process broker
(Redis when REDIS_URL is set), demo data on first start.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.core.servers.basehttp import (
    ThreadedWSGIServer,
    WSGIRequestHandler,
    get_internal_wsgi_application,
)

from core.management.commands.scheduler import run_scheduler
from core.management.commands.worker import run_worker_threads
from integrations.lab.server import Lab

log = logging.getLogger("bulwark.standalone")


class Command(BaseCommand):
    help = "Run Bulwark in one process: web, worker threads and scheduler (embedded mode)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--workers", type=int, default=4, help="worker threads (default 4)")
        parser.add_argument("--no-demo", action="store_true", help="skip demo data on first start")
        parser.add_argument("--lab-port", type=int, default=settings.BULWARK_LAB_PORT,
                            help="port of the vendor simulators served alongside (0: none)")  # fmt: skip

    def _start_lab(self, port: int) -> Lab | None:
        try:
            return Lab(
                "127.0.0.1", port, smtp_port=port + 1, state_dir=settings.VAR_DIR / "lab"
            ).start()
        except OSError as exc:
            self.stderr.write(f"the vendor simulators are not served: port {port}: {exc.strerror}; "
                              "choose another with --lab-port")  # fmt: skip
            return None

    def handle(self, *args: Any, **options: Any) -> None:
        from playbooks.models import Playbook

        call_command("migrate", interactive=False, verbosity=0)
        lab = self._start_lab(options["lab_port"]) if options["lab_port"] else None
        if not options["no_demo"] and not Playbook.objects.exists():
            call_command("demo_data", stdout=self.stdout)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=run_worker_threads,
                args=(options["workers"], stop),
                name="workers",
                daemon=True,
            ),
            threading.Thread(
                target=run_scheduler,
                args=(stop, settings.BULWARK_SCHEDULER_TICK_SECONDS),
                name="scheduler",
                daemon=True,
            ),
        ]
        for thread in threads:
            thread.start()
        broker = "Redis" if settings.REDIS_URL else "in-process"
        url = f"http://{options['host']}:{options['port']}"
        self.stdout.write(
            f"Bulwark standalone: {url}/api/v1/runs/  (API docs {url}/api/v1/docs/, admin {url}/admin/)\n"
            f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, broker {broker}, "
            f"{options['workers']} worker threads, scheduler every {settings.BULWARK_SCHEDULER_TICK_SECONDS:g}s"
            + (
                f"\nvendor simulators (the lab): {lab.url}/<vendor>/, mail {lab.smtp.url}"
                if lab
                else ""
            )
        )
        server = ThreadedWSGIServer(
            (options["host"], options["port"]), WSGIRequestHandler, ipv6=":" in options["host"]
        )
        server.daemon_threads = True
        server.set_app(StaticFilesHandler(get_internal_wsgi_application()))

        def shutdown(*_: Any) -> None:
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        try:
            server.serve_forever()
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
            if lab is not None:
                lab.stop()
