"""/api/v1/connections/: credentials go in and never come out; admins write, any role reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from integrations.models import Connection
from tests.conftest import client_for

SECRET = "pw-SECRET-8675309"
URL = "/api/v1/connections/"
pytestmark = [
    pytest.mark.urls("tests.integrations.urls"),
    pytest.mark.usefixtures("encryption_keys"),
]


def _body(**overrides: Any) -> dict[str, Any]:
    body = {
        "integration": "http",
        "name": "corp-api",
        "base_url": "https://api.example.com/v1",
        "credentials": {"username": "svc", "password": SECRET},
        "allow_private_network": False,
    }
    return {**body, **overrides}


def test_an_admin_creates_a_connection_and_the_response_holds_no_credentials(
    admin_user: User,
) -> None:
    response = client_for(admin_user).post(URL, _body(), format="json")
    assert response.status_code == 201, response.content
    assert "credentials" not in response.data
    assert response.data["credential_keys"] == ["password", "username"]
    assert response.data["has_credentials"] is True
    assert response.data["created_by"] == "root"
    assert SECRET not in response.content.decode()
    assert Connection.objects.get(name="corp-api").credentials["password"] == SECRET


def test_reading_never_shows_credentials(admin_user: User, dave: User) -> None:
    client_for(admin_user).post(URL, _body(), format="json")
    viewer = client_for(dave)
    listing = viewer.get(URL)
    detail = viewer.get(f"{URL}corp-api/")
    assert listing.status_code == detail.status_code == 200
    assert [c["name"] for c in listing.data["results"]] == ["corp-api"]
    assert detail.data["base_url"] == "https://api.example.com/v1"
    for response in (listing, detail):
        assert SECRET not in response.content.decode()
        assert '"credentials"' not in response.content.decode()


def test_creating_writes_an_audit_event_without_secret_values(admin_user: User) -> None:
    client_for(admin_user).post(URL, _body(), format="json")
    event = AuditEvent.objects.get(kind="connection.created")
    assert event.actor == "user:root"
    assert event.payload["auth_fields_set"] == ["password", "username"]
    assert SECRET not in json.dumps(event.payload)


def test_only_admins_may_write(bob: User, dave: User) -> None:
    for user in (bob, dave):
        assert client_for(user).post(URL, _body(), format="json").status_code == 403
    assert client_for(None).get(URL).status_code in {401, 403}
    assert not Connection.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "gopher://api.example.com/"),
        ("base_url", "not a url"),
        ("name", "Corp API"),
        ("integration", "Not-A-Slug"),
        ("credentials", "hunter2"),
    ],
)
def test_a_bad_field_is_a_400_naming_its_path(admin_user: User, field: str, value: str) -> None:
    response = client_for(admin_user).post(URL, _body(**{field: value}), format="json")
    assert response.status_code == 400
    assert response.data["errors"][0]["path"] == field
    assert not Connection.objects.exists()


def test_a_duplicate_name_is_a_400_on_name(admin_user: User) -> None:
    client = client_for(admin_user)
    client.post(URL, _body(), format="json")
    response = client.post(URL, _body(integration="slack"), format="json")
    assert response.status_code == 400
    assert response.data["errors"][0]["path"] == "name"


def test_patching_credentials_replaces_them_and_audits_the_keys(admin_user: User) -> None:
    client = client_for(admin_user)
    client.post(URL, _body(), format="json")
    response = client.patch(
        f"{URL}corp-api/",
        {"credentials": {"token": "tok-NEW-SECRET"}, "allow_private_network": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.data["credential_keys"] == ["token"]
    assert response.data["allow_private_network"] is True
    assert "tok-NEW-SECRET" not in response.content.decode()
    connection = Connection.objects.get(name="corp-api")
    assert connection.credentials == {"token": "tok-NEW-SECRET"}
    event = AuditEvent.objects.get(kind="connection.updated")
    assert event.payload["auth_fields_added"] == ["token"]
    assert event.payload["auth_fields_removed"] == ["password", "username"]
    assert event.payload["allow_private_network_before"] is False
    assert "tok-NEW-SECRET" not in json.dumps(event.payload)


def test_patching_the_name_or_a_bad_base_url_is_refused(admin_user: User) -> None:
    client = client_for(admin_user)
    client.post(URL, _body(), format="json")
    renamed = client.patch(f"{URL}corp-api/", {"name": "other"}, format="json")
    assert (renamed.status_code, renamed.data["errors"][0]["path"]) == (400, "name")
    bad_url = client.patch(f"{URL}corp-api/", {"base_url": "file:///etc/passwd"}, format="json")
    assert (bad_url.status_code, bad_url.data["errors"][0]["path"]) == (400, "base_url")
    assert Connection.objects.get().base_url == "https://api.example.com/v1"


def test_deleting_a_connection_is_audited(admin_user: User, dave: User) -> None:
    client_for(admin_user).post(URL, _body(), format="json")
    assert client_for(dave).delete(f"{URL}corp-api/").status_code == 403
    assert client_for(admin_user).delete(f"{URL}corp-api/").status_code == 204
    assert not Connection.objects.exists()
    assert AuditEvent.objects.filter(kind="connection.deleted").count() == 1


def test_put_is_not_offered(admin_user: User) -> None:
    client = client_for(admin_user)
    client.post(URL, _body(), format="json")
    assert client.put(f"{URL}corp-api/", _body(), format="json").status_code == 405


def test_rate_limit_and_circuit_settings_are_set_shown_audited_and_checked(
    admin_user: Any, encryption_keys: list[str]
) -> None:
    from audit.models import AuditEvent
    from tests.conftest import client_for as api

    client = api(admin_user)
    created = client.post("/api/v1/connections/", {
        "integration": "crowdstrike", "name": "falcon-eu", "base_url": "https://api.eu-1.crowdstrike.com",
        "credentials": {"client_id": "id", "client_secret": "secret-value-1"},
        "rate_limit_per_minute": 100, "circuit_failures": 4, "circuit_cooldown_seconds": 60,
    }, format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["rate_limit_per_minute"], body["circuit_failures"]) == (100, 4)
    assert body["health"]["circuit"] == "closed"
    changed = client.patch("/api/v1/connections/falcon-eu/", {"rate_limit_per_minute": None},
                           format="json")  # fmt: skip
    assert changed.status_code == 200
    assert changed.json()["rate_limit_per_minute"] is None
    event = AuditEvent.objects.filter(kind="connection.updated").last()
    assert event is not None
    assert event.payload["rate_limit_per_minute_before"] == 100
    bad = client.patch("/api/v1/connections/falcon-eu/", {"circuit_failures": 0}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["path"] == "circuit_failures"
