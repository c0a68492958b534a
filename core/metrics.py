"""Prometheus metrics, read from the database at scrape time.

Workers run in other processes (and on other machines), so per-process counters would
each see a slice; the database sees everything.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q, Sum
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from core.models import (
    RUN_STATUS_CHOICES,
    ApprovalRequest,
    Attempt,
    ReconcilerCounter,
    Run,
    StepRun,
)
from integrations.models import ConnectionHealth

DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)


class BulwarkCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        # Dry runs are rehearsals: never counted as response, but counted on their own.
        runs = GaugeMetricFamily(
            "bulwark_runs", "Runs by status (dry runs apart)", labels=["status"]
        )
        dry = GaugeMetricFamily("bulwark_dry_runs", "Dry runs by status", labels=["status"])
        counts = {
            (status, bool(is_dry)): n
            for status, is_dry, n in Run.objects.values_list("status", "dry_run")
            .annotate(n=Count("id")).values_list("status", "dry_run", "n")
        }  # fmt: skip
        for status, _ in RUN_STATUS_CHOICES:
            runs.add_metric([status], counts.get((status, False), 0))
            dry.add_metric([status], counts.get((status, True), 0))
        yield runs
        yield dry

        depth = GaugeMetricFamily(
            "bulwark_queue_depth", "Units waiting for a worker, by state", labels=["state"]
        )
        waiting = StepRun.objects.aggregate(
            queued=Count("id", filter=Q(status="queued")),
            retry_wait=Count("id", filter=Q(status="retry_wait")),
            waiting=Count("id", filter=Q(status="waiting")),
            running=Count("id", filter=Q(status="running")),
        )
        for state, value in waiting.items():
            depth.add_metric([state], value)
        yield depth

        pending = GaugeMetricFamily(
            "bulwark_approvals_pending", "Approval requests waiting for people", labels=["kind"]
        )
        open_requests = dict(
            ApprovalRequest.objects.filter(status="pending", run__dry_run=False)
            .values_list("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        )
        for kind, _ in ApprovalRequest.Kind.choices:
            pending.add_metric([kind], open_requests.get(kind, 0))
        yield pending

        finished = Attempt.objects.exclude(duration_ms=None).filter(unit__run__dry_run=False)
        buckets = finished.aggregate(
            total=Count("id"),
            total_ms=Sum("duration_ms"),
            **{f"le_{b}": Count("id", filter=Q(duration_ms__lte=b)) for b in DURATION_BUCKETS_MS},
        )
        histogram = HistogramMetricFamily(
            "bulwark_step_duration_seconds", "Duration of finished step attempts"
        )
        histogram.add_metric(
            [],
            [(str(b / 1000), buckets[f"le_{b}"]) for b in DURATION_BUCKETS_MS]
            + [("+Inf", buckets["total"])],
            sum_value=(buckets["total_ms"] or 0.0) / 1000,
        )
        yield histogram

        recoveries = CounterMetricFamily(
            "bulwark_reconciler_recoveries", "Work the scheduler recovered", labels=["kind"]
        )
        for kind, count in ReconcilerCounter.objects.values_list("kind", "count"):
            recoveries.add_metric([kind], count)
        yield recoveries
        yield from connection_metrics()


def connection_metrics() -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Each connection's circuit breaker and rate limiter (integrations.health)."""
    state = GaugeMetricFamily(
        "bulwark_connection_circuit_state", "1 for the state each connection's circuit is in",
        labels=["connection", "state"],
    )  # fmt: skip
    failures = GaugeMetricFamily(
        "bulwark_connection_consecutive_failures", "Transient failures in a row",
        labels=["connection"],
    )  # fmt: skip
    refused = CounterMetricFamily(
        "bulwark_connection_refused", "Attempts refused by an open circuit", labels=["connection"]
    )
    deferred = CounterMetricFamily(
        "bulwark_connection_rate_limited", "Attempts deferred by the connection's rate limit",
        labels=["connection"],
    )  # fmt: skip
    opened = CounterMetricFamily(
        "bulwark_connection_circuit_opened", "Times the circuit opened", labels=["connection"]
    )
    rows = ConnectionHealth.objects.values_list(
        "connection__name", "state", "consecutive_failures", "requests_refused",
        "requests_deferred", "times_opened",
    )  # fmt: skip
    for name, current, in_a_row, refusals, deferrals, times in rows:
        for option in ConnectionHealth.State.values:
            state.add_metric([name, option], 1 if option == current else 0)
        failures.add_metric([name], in_a_row)
        refused.add_metric([name], refusals)
        deferred.add_metric([name], deferrals)
        opened.add_metric([name], times)
    yield from (state, failures, refused, deferred, opened)


def registry() -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(BulwarkCollector())
    return reg
