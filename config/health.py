"""Liveness/readiness and Prometheus metrics endpoints."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers; 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return JsonResponse({"status": "unavailable", "database": type(exc).__name__}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics; behind a bearer token when BULWARK_METRICS_TOKEN is set."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JsonResponse({"error": "a bearer token is required for /metrics"}, status=401)
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from alerts.metrics import IntakeCollector
    from core.metrics import registry

    collected = registry()
    collected.register(IntakeCollector())
    return HttpResponse(generate_latest(collected), content_type=CONTENT_TYPE_LATEST)
