"""The dashboard: what is open, what waits on people, how alerts arrive and are answered."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from alerts.models import Alert, AlertRun
from core.approval_models import ApprovalRequest
from core.engine.state import RunStatus
from core.models import Run
from web.access import page

HOURS = 24
WINDOW = timedelta(days=7)
FAILED = (RunStatus.FAILED, RunStatus.NEEDS_ATTENTION, RunStatus.COMPENSATED)


@page
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    since = now - WINDOW
    # Response, not rehearsals: dry runs are on the runs page.
    open_runs = Run.objects.active().filter(dry_run=False).select_related("playbook", "version")
    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING,
                                             run__dry_run=False)  # fmt: skip
    failures = (
        Run.objects.filter(status__in=FAILED, created_at__gte=since, dry_run=False)
        .select_related("playbook", "version")
        .order_by("-created_at", "-id")
    )
    return render(request, "web/dashboard.html", {
        "open_count": open_runs.count(),
        "open_runs": open_runs.order_by("-created_at", "-id")[:10],
        "pending_count": pending.count(),
        "pending": pending.select_related("run__playbook").order_by("requested_at")[:5],
        "chart": alerts_per_hour(now),
        "mtta": _mean(AlertRun.objects.filter(alert__first_seen_at__gte=since),
                      F("run__created_at") - F("alert__first_seen_at")),
        "mttr": _mean(AlertRun.objects.filter(alert__first_seen_at__gte=since,
                                              run__finished_at__isnull=False),
                      F("run__finished_at") - F("alert__first_seen_at")),
        "failure_count": failures.count(),
        "failures": failures[:10],
        "failures_by_playbook": failures.order_by().values("playbook__name")
        .annotate(n=Count("id")).order_by("-n", "playbook__name")[:10],
    })  # fmt: skip


def _mean(links: Any, difference: Any) -> timedelta | None:
    """The mean of a time difference over alert-run links, in the database."""
    span = ExpressionWrapper(difference, output_field=DurationField())
    value = links.aggregate(mean=Avg(span))["mean"]
    return value if isinstance(value, timedelta) or value is None else timedelta(microseconds=value)


def alerts_per_hour(now: datetime) -> dict[str, Any]:
    """The last HOURS hours' alert counts, as bars for an inline SVG chart."""
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    counts = {
        row["hour"]: row["n"]
        for row in Alert.objects.filter(first_seen_at__gte=start)
        .annotate(hour=TruncHour("first_seen_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .order_by()
    }
    hours = [start + timedelta(hours=n) for n in range(HOURS)]
    values = [counts.get(hour, 0) for hour in hours]
    top = max(values) or 1
    width, height = 20, 100
    bars = [
        {"x": n * width + 2, "y": height - round(v * height / top), "h": round(v * height / top),
         "w": width - 4, "value": v, "hour": hour}
        for n, (hour, v) in enumerate(zip(hours, values, strict=True))
    ]  # fmt: skip
    return {"bars": bars, "total": sum(values), "top": top, "width": HOURS * width,
            "height": height}  # fmt: skip
