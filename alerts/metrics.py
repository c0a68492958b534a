"""Alert-intake metrics, read from the database at scrape time (like core.metrics)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Sum
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from alerts.models import IntakeCounter


class IntakeCollector(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        deliveries = CounterMetricFamily(
            "bulwark_alert_deliveries",
            "Alert deliveries by source and outcome (accepted, duplicate, or why refused)",
            labels=["source", "outcome"],
        )
        totals = (
            IntakeCounter.objects.values("source", "outcome")
            .annotate(total=Sum("count"))
            .values_list("source", "outcome", "total")
        )
        for source, outcome, number in totals:
            deliveries.add_metric([source, outcome], number)
        yield deliveries
