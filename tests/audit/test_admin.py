"""The admin shows audit events and offers no way to add, change or delete them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.events import record_event
from audit.models import AuditEvent

pytestmark = pytest.mark.urls("tests.audit.urls")

CHANGELIST = "/admin/audit/auditevent/"


@pytest.fixture
def event(db: None) -> AuditEvent:
    return record_event(stream="run:3", kind="run.started", actor="user:bob", payload={"a": 1})


@pytest.fixture
def browser(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_a_superuser_sees_events_in_the_admin(browser: Client, event: AuditEvent) -> None:
    response = browser.get(CHANGELIST)
    assert response.status_code == 200
    assert b"run:3" in response.content
    assert browser.get(f"{CHANGELIST}{event.pk}/change/").status_code == 200


def test_the_admin_refuses_to_add_change_or_delete_events(
    browser: Client, event: AuditEvent
) -> None:
    assert browser.get(f"{CHANGELIST}add/").status_code == 403
    assert browser.post(f"{CHANGELIST}{event.pk}/change/", {"kind": "x"}).status_code == 403
    assert browser.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).kind == "run.started"
