"""The admin shows sources and alerts, never a secret, and changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from alerts.models import AlertSource
from alerts.sources import create_source

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-hooks-0123456789"
SOURCES = "/admin/alerts/alertsource/"


@pytest.fixture
def source(encryption_keys: list[str]) -> AlertSource:
    return create_source(
        slug="edr", format="generic", auth="bearer", secret=SECRET, actor="user:alice"
    )


@pytest.fixture
def browser(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_a_source_shows_in_the_admin_without_its_secret(
    browser: Client, source: AlertSource
) -> None:
    listing = browser.get(SOURCES)
    assert listing.status_code == 200
    assert b"edr" in listing.content
    page = browser.get(f"{SOURCES}{source.pk}/change/")
    assert page.status_code == 200
    assert SECRET.encode() not in page.content
    assert source.secrets_encrypted.encode() not in page.content


def test_the_admin_adds_changes_and_deletes_no_source(browser: Client, source: AlertSource) -> None:
    assert browser.get(f"{SOURCES}add/").status_code == 403
    assert (
        browser.post(f"{SOURCES}{source.pk}/change/", {"slug": "x", "enabled": ""}).status_code
        == 403
    )
    assert browser.post(f"{SOURCES}{source.pk}/delete/", {"post": "yes"}).status_code == 403
    source.refresh_from_db()
    assert (source.slug, source.enabled) == ("edr", True)
