"""`manage.py demo_data`: demo users, the example playbooks (published) and a demo run."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

from accounts import roles
from integrations.lab.connections import ensure_lab_connections

DEMO_PLAYBOOK = "contain-compromised-host"
# A host the lab's Falcon simulator knows (integrations.crowdstrike.simulator.DEMO_HOSTS).
DEMO_INPUTS = {"host_id": "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"}
DEMO_USERS = {
    "admin": (roles.ADMIN,),
    "analyst": (roles.ANALYST, roles.VIEWER),
    "author": (roles.AUTHOR, roles.VIEWER),
    # The example playbooks' gates ask these groups (ordinary Django groups).
    "approver": (
        roles.APPROVER,
        roles.VIEWER,
        "incident-commanders",
        "soc-leads",
        "change-approvers",
    ),
    "auditor": (roles.AUDITOR, roles.VIEWER),
}


class Command(BaseCommand):
    help = "Create demo users, import and publish the example playbooks, and start a demo run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-run", action="store_true", help="do not start the demo run")
        parser.add_argument("--lab-url", default=None,
                            help="connect the vendors to the lab at this URL (default: this host's lab port)")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        from core.runs import start_run
        from playbooks.models import Playbook

        for username, groups in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username)
            if created:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.is_staff = user.is_superuser = username == "admin"
                user.email = f"{username}@bulwark.example"
                user.save()
                self.stdout.write(f"user {username} / {password}")
            for name in groups:
                user.groups.add(Group.objects.get_or_create(name=name)[0])
        token, _ = Token.objects.get_or_create(user=User.objects.get(username="admin"))
        self.stdout.write(f"admin API token: {token.key}")
        approver, _ = Token.objects.get_or_create(user=User.objects.get(username="approver"))
        self.stdout.write(f"approver API token: {approver.key}")
        lab_url = options["lab_url"] or f"http://127.0.0.1:{settings.BULWARK_LAB_PORT}"
        names = ensure_lab_connections(lab_url, actor="system:demo")
        self.stdout.write(f"connections to the lab at {lab_url}: {', '.join(names)}")
        call_command("import_playbooks", publish=True, stdout=self.stdout, stderr=self.stderr)
        if not options["no_run"]:
            run = start_run(
                playbook=Playbook.objects.get(name=DEMO_PLAYBOOK),
                inputs=DEMO_INPUTS,
                actor="system:demo",
            )
            self.stdout.write(
                f"demo run {run.pk} of {DEMO_PLAYBOOK} started: /api/v1/runs/{run.pk}/; "
                "it waits for an incident commander to approve containing the host: log in "
                'as approver at /approvals/, or POST {"decision": "approve"} to '
                "/api/v1/approvals/<id>/decision/ with the approver's token"
            )
