"""Budgets and chat identities are edited in the admin, and every change is audited;
requests and decisions can only be read there."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AuditEvent
from core.approval_models import ActionBudget

pytestmark = pytest.mark.django_db


def test_a_budget_saved_and_deleted_in_the_admin_is_audited(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/core/actionbudget/add/",
        {
            "action": "crowdstrike.contain_host",
            "limit": "20",
            "window_seconds": "3600",
            "approvers": '["incident-commanders"]',
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    budget = ActionBudget.objects.get()
    created = AuditEvent.objects.get(kind="budget.created")
    assert created.actor == "user:root"
    assert created.payload["values"]["limit"] == 20
    client.post(f"/admin/core/actionbudget/{budget.pk}/delete/", {"post": "yes"})
    assert not ActionBudget.objects.exists()
    assert AuditEvent.objects.filter(kind="budget.deleted").count() == 1


def test_approval_requests_cannot_be_added_in_the_admin(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    assert client.get("/admin/core/approvalrequest/").status_code == 200
    assert client.get("/admin/core/approvalrequest/add/").status_code == 403
