"""Grafana unified alerting: the Alertmanager shape plus `title`, `state`, `message` and
per-alert `values`, `dashboardURL`, `panelURL` (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings import alertmanager
from alerts.mappings.base import MappingError, Normalised


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    # Grafana says version "1" for its own envelope; its alerts are Alertmanager's.
    alerts = alertmanager.normalise(
        {**payload, "version": "4", "receiver": payload.get("receiver") or "grafana"}
    )
    return [
        Normalised(
            **{
                **a.__dict__,
                "title": a.title
                if a.title != "Alertmanager alert"
                else str(payload.get("title") or a.title),
            }
        )
        for a in alerts
    ]
