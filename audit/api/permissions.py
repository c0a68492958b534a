"""Who may read the audit trail: auditors, admins and superusers (SPEC §10)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts import roles
from accounts.permissions import has_role


class CanReadAudit(BasePermission):
    """Allows users with the auditor or admin role, and superusers."""

    message = "reading the audit trail needs the auditor or admin role"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return bool(getattr(user, "is_superuser", False)) or has_role(user, roles.AUDITOR)
