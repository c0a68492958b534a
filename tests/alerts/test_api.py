"""/api/v1/alert-sources/ and /api/v1/alerts/: admins configure sources, any role reads alerts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from tests.conftest import client_for
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "s3cret-for-hooks-0123456789"


def test_an_admin_creates_a_source_whose_secret_never_comes_back(
    admin_user: Any, encryption_keys: list[str]
) -> None:
    answer = client_for(admin_user).post("/api/v1/alert-sources/", {
        "slug": "prom", "format": "alertmanager", "auth": "bearer", "secret": SECRET, "rate_limit_per_minute": 600,
    }, format="json")  # fmt: skip
    assert answer.status_code == 201, answer.content
    assert answer.json()["hook_url"] == "/api/v1/hooks/prom/"
    assert SECRET not in answer.content.decode()
    assert SECRET not in client_for(admin_user).get("/api/v1/alert-sources/prom/").content.decode()
    assert AuditEvent.objects.filter(kind="alert_source.created").exists()
    assert SECRET not in str(list(AuditEvent.objects.values_list("payload", flat=True)))


def test_rotation_through_the_api_keeps_the_old_secret_for_one_round(
    admin_user: Any, encryption_keys: list[str]
) -> None:
    api = client_for(admin_user)
    api.post(
        "/api/v1/alert-sources/", {"slug": "edr", "auth": "bearer", "secret": SECRET}, format="json"
    )
    new = "a-brand-new-secret-9876543210"
    assert (
        api.post("/api/v1/alert-sources/edr/rotate/", {"secret": new}, format="json").status_code
        == 200
    )
    for token in (SECRET, new):
        sent = Client().post("/api/v1/hooks/edr/", json.dumps({"title": token[:5]}), content_type="application/json",
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert sent.status_code == 202


def test_analysts_cannot_create_sources_and_bad_input_names_the_field(bob: Any, admin_user: Any,
                                                                      encryption_keys: list[str]) -> None:  # fmt: skip
    body = {"slug": "edr", "auth": "bearer", "secret": SECRET}
    assert client_for(bob).post("/api/v1/alert-sources/", body, format="json").status_code == 403
    short = client_for(admin_user).post(
        "/api/v1/alert-sources/", {**body, "secret": "short"}, format="json"
    )
    assert short.status_code == 400
    assert short.json()["errors"][0]["path"] == "secret"


def test_alerts_show_their_runs_and_trigger_errors(
    admin_user: Any, dave: Any, encryption_keys: list[str]
) -> None:
    client_for(admin_user).post("/api/v1/alert-sources/", {"slug": "edr", "auth": "bearer", "secret": SECRET},
                                format="json")  # fmt: skip
    published_version(definition(echo("first"), name="contain", triggers=[{"source": "edr"}]))
    Client().post("/api/v1/hooks/edr/", json.dumps({"title": "Ransomware", "severity": "critical"}),
                  content_type="application/json", headers={"Authorization": f"Bearer {SECRET}"})  # fmt: skip
    listed = client_for(dave).get("/api/v1/alerts/").json()
    (alert,) = listed["results"] if isinstance(listed, dict) else listed
    assert (alert["title"], alert["source"], alert["count"]) == ("Ransomware", "edr", 1)
    assert len(alert["runs"]) == 1
    assert alert["trigger_errors"] == []
