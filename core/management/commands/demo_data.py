"""`manage.py demo_data`: demo users, the example playbooks (published) and a demo run."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

from accounts import roles

DEMO_PLAYBOOK = "contain-compromised-host"
DEMO_INPUTS = {"host_id": "demo-host-01"}
DEMO_USERS = {
    "admin": (roles.ADMIN,),
    "analyst": (roles.ANALYST, roles.VIEWER),
    "author": (roles.AUTHOR, roles.VIEWER),
    "approver": (roles.APPROVER, roles.VIEWER),
    "auditor": (roles.AUDITOR, roles.VIEWER),
}


class Command(BaseCommand):
    help = "Create demo users, import and publish the example playbooks, and start a demo run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-run", action="store_true", help="do not start the demo run")

    def handle(self, *args: Any, **options: Any) -> None:
        from core.runs import start_run
        from playbooks.models import Playbook

        for username, groups in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username)
            if created:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.is_staff = user.is_superuser = username == "admin"
                user.save()
                self.stdout.write(f"user {username} / {password}")
            for name in groups:
                user.groups.add(Group.objects.get_or_create(name=name)[0])
        token, _ = Token.objects.get_or_create(user=User.objects.get(username="admin"))
        self.stdout.write(f"admin API token: {token.key}")
        call_command("import_playbooks", publish=True, stdout=self.stdout, stderr=self.stderr)
        if not options["no_run"]:
            run = start_run(
                playbook=Playbook.objects.get(name=DEMO_PLAYBOOK),
                inputs=DEMO_INPUTS,
                actor="system:demo",
            )
            self.stdout.write(
                f"demo run {run.pk} of {DEMO_PLAYBOOK} started: /api/v1/runs/{run.pk}/"
            )
