"""Grafana unified alerting: the Alertmanager shape plus `title`, `state`, `message` and
per-alert `values`, `dashboardURL`, `panelURL` (vendor-apis.md §7)."""

from __future__ import annotations

from typing import Any

from alerts.mappings import alertmanager
from alerts.mappings.base import MappingError, Normalised


def normalise(payload: Any) -> list[Normalised]:
    if not isinstance(payload, dict):
        raise MappingError("(body)", "must be a JSON object")
    # Grafana says version "1" for its own envelope; its alerts are Alertmanager's. An
    # alert without a summary or alertname takes the notification's title.
    envelope = {**payload, "version": "4", "receiver": payload.get("receiver") or "grafana"}
    return alertmanager.normalise(
        envelope, default_title=str(payload.get("title") or "Grafana alert")
    )
