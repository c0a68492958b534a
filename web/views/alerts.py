"""Alerts: the list, and an alert with its raw payload, normalised fields and runs."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from alerts.models import Alert, AlertRun, AlertSource
from web.access import page

PAGE_SIZE = 50


@page
def alert_list(request: HttpRequest) -> HttpResponse:
    alerts = Alert.objects.select_related("source").order_by("-id")
    source = request.GET.get("source", "")
    severity = request.GET.get("severity", "")
    if source:
        alerts = alerts.filter(source__slug=source)
    if severity:
        alerts = alerts.filter(severity=severity)
    current = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/alerts.html", {
        "page": current, "query": query.urlencode(), "source": source, "severity": severity,
        "sources": AlertSource.objects.order_by("slug").values_list("slug", flat=True),
        "severities": ("critical", "high", "medium", "low", "info"),
    })  # fmt: skip


@page
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert.objects.select_related("source"), pk=pk)
    links = AlertRun.objects.filter(alert=alert).select_related("run__playbook", "run__version")
    return render(request, "web/alert.html", {
        "alert": alert, "links": links.order_by("run_id"),
    })  # fmt: skip
