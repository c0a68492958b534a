"""The built-in roles (SPEC §10): Django groups with these names."""

from __future__ import annotations

from typing import Final

VIEWER: Final = "viewer"
ANALYST: Final = "analyst"
APPROVER: Final = "approver"
AUTHOR: Final = "author"
AUDITOR: Final = "auditor"
ADMIN: Final = "admin"
ROLES: Final = (VIEWER, ANALYST, APPROVER, AUTHOR, AUDITOR, ADMIN)
