"""Approvals in the Django admin: requests and decisions to read; budgets and chat
identities to edit, every change audited."""

from __future__ import annotations

from django.contrib import admin

from accounts.models import ChatIdentity
from audit.audited_admin import AuditedAdmin
from common.admin import ReadOnlyAdmin
from core.approval_models import ActionBudget, ApprovalDecision, ApprovalRequest


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run",
        "unit_label",
        "number",
        "kind",
        "status",
        "requested_at",
        "decided_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["unit_label", "message"]


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "actor", "approve", "channel", "decided_at"]
    list_filter = ["approve", "channel"]


@admin.register(ActionBudget)
class ActionBudgetAdmin(AuditedAdmin):
    audit_kind = "budget"
    list_display = ["action", "limit", "window_seconds", "approvers", "enabled", "updated_at"]


@admin.register(ChatIdentity)
class ChatIdentityAdmin(AuditedAdmin):
    """Linking a chat account lets its clicks decide as this user: an audited change."""

    audit_kind = "chat_identity"
    list_display = ["user", "provider", "team", "subject"]
    search_fields = ["user__username", "subject"]
