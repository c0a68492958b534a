"""Integrations and connections: each connection's health and circuit, and a test button."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.permissions import actor_for
from integrations.connections import test_connection
from integrations.models import Connection, ConnectionHealth
from integrations.registry import load_actions
from web.access import can, needs, page


@page
def integration_list(request: HttpRequest) -> HttpResponse:
    connections = Connection.objects.select_related("health").order_by("integration", "name")
    rows = []
    for connection in connections:
        try:
            health: ConnectionHealth | None = connection.health
        except ConnectionHealth.DoesNotExist:
            health = None
        rows.append({"connection": connection, "health": health})
    actions = Counter(spec.name.split(".", 1)[0] for spec in load_actions().values()
                      if not spec.internal)  # fmt: skip
    return render(request, "web/integrations.html", {
        "rows": rows, "actions": sorted(actions.items()),
        "can_test": can(request, roles.AUTHOR),
    })  # fmt: skip


@require_POST
@needs(roles.AUTHOR)
def connection_test(request: HttpRequest, name: str) -> HttpResponse:
    connection = get_object_or_404(Connection, name=name)
    result = test_connection(connection=connection, actor=actor_for(request.user))
    if result["ok"]:
        messages.success(request, f"{name}: {result['message']}")
    else:
        messages.error(request, f"{name}: {result['message']}")
    return redirect("web:integrations")
