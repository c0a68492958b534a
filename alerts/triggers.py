"""Matching an accepted alert against the playbooks' triggers, once, after acceptance.

A trigger names its source, an `if` over `alert.*`, and inputs rendered from the alert.
Each match starts a run of the playbook's active version, linked to the alert. A
trigger that fails is recorded on the alert; the alert itself is never lost. Matching
runs right after the delivery commits, and the scheduler finishes any it interrupted.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from alerts.models import Alert, AlertRun
from core.reconciler import SweepResult
from core.runs import RunRefused, start_run
from playbooks.expressions import ExpressionError, evaluate_condition, render_value
from playbooks.models import PlaybookVersion

log = logging.getLogger(__name__)
# Alerts still unmatched this long after they were first seen are matched by the scheduler.
STALE_SECONDS = 10


def alert_context(alert: Alert) -> dict[str, Any]:
    """What templates and conditions see as `alert`."""
    return {
        "id": alert.pk, "source": alert.source.slug, "title": alert.title, "severity": alert.severity,
        "status": alert.status, "external_id": alert.external_id,
        "occurred_at": alert.occurred_at.isoformat() if alert.occurred_at else None,
        "entities": alert.entities, "raw": alert.raw, "count": alert.count,
    }  # fmt: skip


def match_alert(alert_id: int) -> list[int]:
    """Start the runs the alert's triggers ask for; returns their ids (none if matched before)."""
    started: list[int] = []
    with transaction.atomic():
        alert = (
            # Only the alert's row, and NO KEY: a FOR UPDATE of the joined source would queue
            # every delivery to that source (their foreign keys take KEY SHARE on it).
            Alert.objects.select_for_update(of=("self",), no_key=True)
            .select_related("source")
            .filter(pk=alert_id)
            .first()
        )
        if alert is None or alert.triggered_at is not None:
            return started
        context = {"alert": alert_context(alert)}
        errors: list[dict[str, Any]] = []
        versions = PlaybookVersion.objects.filter(
            state=PlaybookVersion.State.PUBLISHED
        ).select_related("playbook")
        for version in versions.order_by("playbook__name"):
            for index, trigger in enumerate(version.definition.get("triggers") or []):
                if trigger.get("source") != alert.source.slug:
                    continue
                where = f"{version.playbook.name} v{version.number} triggers[{index}]"
                try:
                    with transaction.atomic():  # a refused start leaves nothing behind
                        if trigger.get("if") and not evaluate_condition(
                            trigger["if"], context, path=f"{where}.if"
                        ):
                            continue
                        inputs = render_value(
                            trigger.get("inputs") or {}, context, path=f"{where}.inputs"
                        )
                        run = start_run(playbook=version.playbook, inputs=inputs, version=version.number,
                                        actor=f"alert:{alert.pk}", context=context)  # fmt: skip
                        AlertRun.objects.create(alert=alert, run=run, trigger_index=index)
                        started.append(run.pk)
                except (ExpressionError, RunRefused) as exc:
                    log.warning("alert %s: %s failed: %s", alert.pk, where, exc)
                    errors.append({"trigger": where, "error": str(exc)})
        alert.triggered_at = timezone.now()
        alert.trigger_errors = errors
        alert.save(update_fields=["triggered_at", "trigger_errors"])
    return started


def match_stale_alerts(result: SweepResult) -> None:
    """The scheduler's duty: match alerts whose matching never ran (the process died)."""
    from alerts.intake import triggered_sources

    cutoff = timezone.now() - timedelta(seconds=STALE_SECONDS)
    unmatched = Alert.objects.filter(triggered_at__isnull=True, first_seen_at__lt=cutoff)
    # Alerts of sources no published trigger names: nothing to start, closed in one UPDATE.
    unmatched.exclude(source__slug__in=triggered_sources()).update(triggered_at=timezone.now())
    for alert_id in Alert.objects.filter(
        triggered_at__isnull=True, first_seen_at__lt=cutoff
    ).values_list("id", flat=True)[:100]:
        try:
            match_alert(alert_id)
        except Exception as exc:  # one bad alert must not stop the others
            log.exception("alert %s: trigger matching failed", alert_id)
            result.errors.append(f"alert {alert_id}: {exc}")
