"""Who may see and do what in the UI: the API's roles (SPEC §10), checked the same way."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import has_role, role_names

View = Callable[..., HttpResponse]


def page(view: View) -> View:
    """A page for any logged-in user holding a role; without one, a page saying so."""

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and request.headers.get("HX-Request"):
            # An htmx poll after the session expired: send the whole page to the login,
            # rather than swapping the login form into a part of it.
            login = f"{settings.LOGIN_URL}?{urlencode({'next': request.headers.get('HX-Current-URL', '/')})}"
            return HttpResponse(status=204, headers={"HX-Redirect": login})
        return _logged_in(request, *args, **kwargs)

    @login_required
    def _logged_in(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not role_names(request.user):
            return refused(request, "your account holds no role; ask an admin for one")
        return view(request, *args, **kwargs)

    return checked


def needs(*wanted: str) -> Callable[[View], View]:
    """A page or action only for these roles (admins hold every role)."""

    def wrap(view: View) -> View:
        @page
        @functools.wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, *wanted):
                names = " or ".join(wanted)
                return refused(request, f"this needs the {names} role")
            return view(request, *args, **kwargs)

        return checked

    return wrap


def refused(request: HttpRequest, why: str) -> HttpResponse:
    return render(request, "web/refused.html", {"why": why}, status=403)


def can(request: HttpRequest, role: str) -> bool:
    return has_role(request.user, role)
