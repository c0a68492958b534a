"""Connection operations: encrypted storage, audit events without secrets, resolution."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from integrations import connections
from integrations.models import Connection

SECRET = "tok-SECRET-31337"
pytestmark = pytest.mark.usefixtures("encryption_keys")


def _create(name: str = "corp-api", integration: str = "http", **overrides: object) -> Connection:
    fields: dict[str, object] = {
        "integration": integration,
        "name": name,
        "base_url": "https://api.example.com/v1",
        "credentials": {"token": SECRET},
        "allow_private_network": False,
        "actor": "user:root",
    }
    fields.update(overrides)
    return connections.create_connection(**fields)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_credentials_are_stored_encrypted_and_read_back() -> None:
    created = _create()
    stored = Connection.objects.get(pk=created.pk)
    assert SECRET not in stored.credentials_encrypted
    assert stored.credentials == {"token": SECRET}
    assert SECRET not in repr(stored)
    assert SECRET not in str(stored)


@pytest.mark.django_db
def test_creating_a_connection_is_audited_without_secret_values(admin_user: User) -> None:
    _create(user=admin_user)
    event = AuditEvent.objects.get(kind="connection.created")
    assert (event.stream, event.actor) == ("system", "user:root")
    assert event.payload["connection"] == "corp-api"
    assert event.payload["auth_fields_set"] == ["token"]
    assert SECRET not in json.dumps(event.payload)
    assert Connection.objects.get().created_by == admin_user


@pytest.mark.django_db
def test_updating_credentials_audits_which_keys_changed() -> None:
    created = _create(credentials={"token": SECRET, "username": "svc"})
    connections.update_connection(
        connection=created,
        actor="user:root",
        credentials={"token": "tok-NEW-SECRET", "tenant": "t1"},
    )
    event = AuditEvent.objects.get(kind="connection.updated")
    assert event.payload["auth_fields_added"] == ["tenant"]
    assert event.payload["auth_fields_removed"] == ["username"]
    assert event.payload["auth_fields_changed"] == ["token"]
    assert "tok-NEW-SECRET" not in json.dumps(event.payload)
    assert Connection.objects.get().credentials == {"token": "tok-NEW-SECRET", "tenant": "t1"}


@pytest.mark.django_db
def test_an_update_that_changes_nothing_is_not_audited() -> None:
    created = _create()
    connections.update_connection(
        connection=created, actor="user:root", credentials={"token": SECRET}
    )
    assert not AuditEvent.objects.filter(kind="connection.updated").exists()


@pytest.mark.django_db
def test_deleting_a_connection_is_audited() -> None:
    created = _create()
    connections.delete_connection(connection=created, actor="user:root")
    assert not Connection.objects.exists()
    assert AuditEvent.objects.get(kind="connection.deleted").payload["connection"] == "corp-api"


@pytest.mark.django_db
def test_a_duplicate_name_is_refused_and_nothing_is_audited() -> None:
    _create(integration="http")
    with pytest.raises(connections.ConnectionExists):
        _create(integration="slack")
    assert AuditEvent.objects.filter(kind="connection.created").count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "ftp://files.example.com/"),
        ("base_url", "api.example.com"),
        ("base_url", "https://user:pw@api.example.com/"),
        ("base_url", "https://api.example.com/?key=secret"),
        ("name", "Corp API"),
        ("name", "-corp"),
        ("integration", "HTTP"),
    ],
)
@pytest.mark.django_db
def test_bad_fields_are_refused_with_their_name(field: str, value: str) -> None:
    with pytest.raises(connections.ConnectionInvalid) as caught:
        _create(**{field: value})
    assert caught.value.field == field
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_a_named_connection_resolves_to_its_decrypted_info() -> None:
    _create()
    _create(name="corp-api-2")
    info = connections.resolve_connection(integration="http", name="corp-api-2")
    assert info is not None
    assert (info.name, info.credentials, info.allow_private_network) == (
        "corp-api-2",
        {"token": SECRET},
        False,
    )


@pytest.mark.django_db
def test_the_only_connection_of_an_integration_is_the_default() -> None:
    _create(integration="slack", name="slack-main")
    info = connections.resolve_connection(integration="slack", name=None)
    assert info is not None
    assert info.name == "slack-main"
    assert connections.resolve_connection(integration="jira", name=None) is None


@pytest.mark.django_db
def test_several_connections_and_no_name_is_ambiguous() -> None:
    _create(name="one")
    _create(name="two")
    with pytest.raises(connections.AmbiguousConnection):
        connections.resolve_connection(integration="http", name=None)


@pytest.mark.django_db
def test_an_unknown_name_or_another_integrations_connection_is_a_lookup_error() -> None:
    _create(integration="slack", name="slack-main")
    with pytest.raises(LookupError, match="no connection named"):
        connections.resolve_connection(integration="slack", name="nope")
    with pytest.raises(connections.UnknownConnection, match="is for slack"):
        connections.resolve_connection(integration="http", name="slack-main")


@pytest.mark.django_db
def test_connection_names_lists_integration_and_name_pairs() -> None:
    _create(integration="slack", name="slack-main")
    _create(name="corp-api")
    assert connections.connection_names() == {("slack", "slack-main"), ("http", "corp-api")}
