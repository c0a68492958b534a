"""Role-based API permissions (SPEC §10): roles are Django groups."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts import roles


def role_names(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    """The roles a user holds; a superuser holds them all."""
    if not user.is_authenticated:
        return set()
    if getattr(user, "is_superuser", False):
        return set(roles.ROLES)
    cached: set[str] | None = getattr(user, "_bulwark_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=roles.ROLES).values_list("name", flat=True))  # type: ignore[attr-defined]
        setattr(user, "_bulwark_roles", cached)  # noqa: B010 - a per-request cache on the user object
    return cached


def has_role(user: AbstractBaseUser | AnonymousUser, *wanted: str) -> bool:
    """True when the user holds one of `wanted` (admin holds every role)."""
    held = role_names(user)
    return roles.ADMIN in held or bool(held.intersection(wanted))


class RolePermission(BasePermission):
    """Reads need any role; writes need one of the view's `write_roles` (default: admin).

    A view may set `write_roles = {"create": (...), "cancel": (...)}` keyed by action name,
    or a tuple that applies to every unsafe method.
    """

    message = "your role does not allow this"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in SAFE_METHODS:
            return bool(role_names(user))
        wanted = getattr(view, "write_roles", ())
        if isinstance(wanted, dict):
            wanted = wanted.get(getattr(view, "action", None) or "", ())
        return has_role(user, *wanted)


def actor_for(user: AbstractBaseUser | AnonymousUser | None) -> str:
    """The audit actor string for a user."""
    if user is None or not user.is_authenticated:
        return "anonymous"
    return f"user:{user.get_username()}"
