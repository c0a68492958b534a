"""GET /api/v1/integrations/ (the catalogue) and POST /api/v1/connections/{name}/test/."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from integrations.connections import create_connection
from integrations.crowdstrike.simulator import LAB_CLIENT_ID
from integrations.lab.connections import ensure_lab_connections
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_the_catalogue_lists_every_action_with_its_contract(dave: Any) -> None:
    from integrations.registry import load_actions

    listed = client_for(dave).get("/api/v1/integrations/").json()
    # Every action a playbook can name: the engine's own (a `playbook:` step's) is not one.
    assert [a["name"] for a in listed] == sorted(
        n for n, s in load_actions().items() if not s.internal
    )
    assert "playbook.run" not in [a["name"] for a in listed]
    contain = next(a for a in listed if a["name"] == "crowdstrike.contain_host")
    assert contain["side_effect"] == "destructive"
    assert contain["integration"] == "crowdstrike"
    assert contain["connection"] == {"integration": "crowdstrike", "required": True}
    assert contain["input_schema"]["required"] == ["device_id"]
    assert "poll_interval" in contain["input_schema"]["properties"]
    assert "contained" in contain["output"]
    assert contain["description"].startswith("Network-contain a host")
    echo = next(a for a in listed if a["name"] == "util.echo")
    assert echo["connection"] is None
    builtin = {
        n for n, spec in load_actions().items() if spec.func.__module__.startswith("integrations.")
    }
    assert all(a["output"] for a in listed if a["name"] in builtin), [
        a["name"] for a in listed if a["name"] in builtin and not a["output"]
    ]


def test_the_catalogue_needs_a_role(db: None) -> None:
    assert client_for(None).get("/api/v1/integrations/").status_code in (401, 403)


@pytest.mark.parametrize("vendor", ["crowdstrike", "slack", "jira"])
def test_a_lab_connection_tests_ok_and_the_test_is_audited(
    lab: Any, admin_user: Any, encryption_keys: list[str], vendor: str
) -> None:
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    answer = client_for(admin_user).post(f"/api/v1/connections/lab-{vendor}/test/")
    assert answer.status_code == 200
    assert answer.json()["ok"] is True, answer.json()
    event = AuditEvent.objects.get(kind="connection.tested")
    assert event.payload["connection"] == f"lab-{vendor}"
    assert event.payload["ok"] is True


def test_wrong_credentials_test_not_ok_without_showing_the_secret(
    lab: Any, admin_user: Any, encryption_keys: list[str]
) -> None:
    create_connection(integration="crowdstrike", name="falcon", base_url=lab.base_url("crowdstrike"),
                      credentials={"client_id": LAB_CLIENT_ID, "client_secret": "wrong-secret-xyz"},
                      allow_private_network=True, actor="user:alice")  # fmt: skip
    answer = client_for(admin_user).post("/api/v1/connections/falcon/test/").json()
    assert answer["ok"] is False
    assert "401" in answer["message"]
    assert "wrong-secret-xyz" not in str(answer)
    assert "wrong-secret-xyz" not in str(AuditEvent.objects.get(kind="connection.tested").payload)


def test_only_admins_and_authors_may_test_a_connection(
    lab: Any, bob: Any, encryption_keys: list[str]
) -> None:
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    assert client_for(bob).post("/api/v1/connections/lab-slack/test/").status_code == 403
