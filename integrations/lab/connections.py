"""Connections of the embedded default: one per simulated vendor, pointing at the lab."""

from __future__ import annotations

from typing import Any

import httpx

from integrations.abuseipdb.simulator import LAB_API_KEY as ABUSEIPDB_KEY
from integrations.awx.simulator import LAB_TOKEN as AWX_TOKEN
from integrations.connections import create_connection, update_connection
from integrations.crowdstrike.simulator import LAB_CLIENT_ID, LAB_CLIENT_SECRET
from integrations.defender.simulator import LAB_CLIENT_ID as DEFENDER_CLIENT
from integrations.defender.simulator import LAB_CLIENT_SECRET as DEFENDER_SECRET
from integrations.defender.simulator import LAB_TENANT as DEFENDER_TENANT
from integrations.jira.simulator import LAB_API_TOKEN, LAB_EMAIL
from integrations.mail.simulator import LAB_PASSWORD as MAIL_PASSWORD
from integrations.mail.simulator import LAB_USERNAME as MAIL_USER
from integrations.models import Connection
from integrations.pagerduty.simulator import LAB_ROUTING_KEY
from integrations.sentinelone.simulator import LAB_API_TOKEN as S1_TOKEN
from integrations.servicenow.simulator import LAB_PASSWORD as SNOW_PASSWORD
from integrations.servicenow.simulator import LAB_USERNAME as SNOW_USER
from integrations.slack.simulator import LAB_BOT_TOKEN, LAB_SIGNING_SECRET, LAB_TEAM
from integrations.teams.simulator import lab_webhook_path
from integrations.virustotal.simulator import LAB_API_KEY as VT_KEY

# vendor -> (path under the lab's URL, the lab's credentials for it); options below
LAB_CONNECTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "defender": (
        "/defender",
        {
            "tenant_id": DEFENDER_TENANT,
            "client_id": DEFENDER_CLIENT,
            "client_secret": DEFENDER_SECRET,
        },
    ),
    "crowdstrike": (
        "/crowdstrike",
        {"client_id": LAB_CLIENT_ID, "client_secret": LAB_CLIENT_SECRET},
    ),
    "slack": ("/slack/api", {"token": LAB_BOT_TOKEN, "signing_secret": LAB_SIGNING_SECRET}),
    "jira": ("/jira", {"email": LAB_EMAIL, "api_token": LAB_API_TOKEN}),
    "virustotal": ("/virustotal/api/v3", {"api_key": VT_KEY}),
    "abuseipdb": ("/abuseipdb/api/v2", {"api_key": ABUSEIPDB_KEY}),
    "pagerduty": ("/pagerduty", {"routing_key": LAB_ROUTING_KEY}),
    "sentinelone": ("/sentinelone/web/api/v2.1", {"api_token": S1_TOKEN}),
    "servicenow": ("/servicenow", {"username": SNOW_USER, "password": SNOW_PASSWORD}),
    "awx": ("/awx", {"token": AWX_TOKEN}),
    "teams": ("/teams", {}),
}


def _options(vendor: str, lab_url: str) -> dict[str, Any]:
    # Defender's token comes from Entra ID's host; in the lab, the simulator plays both.
    if vendor == "defender":
        return {"login_url": lab_url.rstrip("/") + "/defender"}
    # Slack clicks are trusted only for the workspace the app's signing secret belongs to.
    return {"team_id": LAB_TEAM} if vendor == "slack" else {}


def _credentials(vendor: str, credentials: dict[str, Any], lab_url: str) -> dict[str, Any]:
    # A Teams workflow's URL is its own credential.
    if vendor == "teams":
        return {"webhook_url": lab_url.rstrip("/") + "/teams" + lab_webhook_path()}
    return credentials


def lab_smtp(lab_url: str) -> tuple[str, str]:
    """Where `manage.py lab` and `standalone` serve mail: the next port, and their CA file."""
    from django.conf import settings

    port = httpx.URL(lab_url).port or settings.BULWARK_LAB_PORT
    return f"smtp://127.0.0.1:{port + 1}", str(settings.VAR_DIR / "lab" / "lab-smtp.crt")


def lab_specs(
    lab_url: str, smtp: tuple[str, str] | None = None
) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(vendor, base URL, credentials, options) of every lab connection."""
    base = lab_url.rstrip("/")
    specs = [(vendor, base + path, _credentials(vendor, credentials, lab_url), _options(vendor, lab_url))
             for vendor, (path, credentials) in LAB_CONNECTIONS.items()]  # fmt: skip
    smtp_url, smtp_ca = smtp or lab_smtp(lab_url)
    specs.append(("email", smtp_url, {"username": MAIL_USER, "password": MAIL_PASSWORD},
                  {"from": MAIL_USER, "tls_ca_file": smtp_ca}))  # fmt: skip
    return specs


def ensure_lab_connections(lab_url: str, *, actor: str,
                           smtp: tuple[str, str] | None = None) -> list[str]:  # fmt: skip
    """Create (or repoint) a `lab-<vendor>` connection for every simulator; returns their names.

    A vendor that already has a connection of another name is left alone: a step that
    names none resolves to the only connection of its integration, and a second one
    would make that ambiguous."""
    names = []
    for vendor, base_url, credentials, options in lab_specs(lab_url, smtp):
        name = f"lab-{vendor}"
        existing = Connection.objects.filter(name=name).first()
        if existing is None:
            if Connection.objects.filter(integration=vendor).exists():
                continue
            create_connection(integration=vendor, name=name, base_url=base_url, credentials=credentials,
                              allow_private_network=True, actor=actor, options=options)  # fmt: skip
        elif (existing.base_url, existing.options, existing.credentials) != (
            base_url, options, credentials
        ):  # fmt: skip
            update_connection(connection=existing, base_url=base_url, actor=actor, options=options,
                              credentials=credentials)  # fmt: skip
        names.append(name)
    return names
