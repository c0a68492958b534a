"""Concurrent deliveries on PostgreSQL: copies make one alert, and no delivery queues behind
another alert's matching."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections

from alerts.intake import accept
from alerts.models import Alert, Delivery
from alerts.sources import create_source
from core.models import Run
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "s3cret-for-hooks-0123456789"


def test_fifty_concurrent_copies_of_one_alert_make_one_alert_and_one_run(
    encryption_keys: list[str],
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrency needs PostgreSQL (SQLite serialises every write)")
    create_source(slug="edr", format="generic", auth="bearer", secret=SECRET, actor="user:alice")
    published_version(definition(echo("first"), name="contain", triggers=[{"source": "edr"}]))

    def deliver(n: int) -> int:
        body = json.dumps(
            {"title": "Ransomware on WS-FIN-042", "external_id": "det-1", "copy": n}
        ).encode()
        try:
            return accept("edr", {"Authorization": f"Bearer {SECRET}"}, body).status
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses: list[Any] = list(pool.map(deliver, range(50)))
    assert statuses == [202] * 50
    (alert,) = Alert.objects.all()
    assert alert.count == 50
    assert Delivery.objects.count() == 50
    assert Run.objects.count() == 1  # fifty copies of one alert start one run


def test_a_delivery_does_not_wait_for_another_alert_s_matching(
    encryption_keys: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matching locks its alert only: deliveries to the same source go on meanwhile."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    import threading

    import alerts.triggers

    create_source(slug="edr", format="generic", auth="bearer", secret=SECRET, actor="user:alice")
    published_version(definition(echo("first"), name="contain", triggers=[{"source": "edr"}]))
    matching, release = threading.Event(), threading.Event()
    real_start_run = alerts.triggers.start_run

    def held_start_run(**kwargs: Any) -> Any:
        if not matching.is_set():  # the first alert's matching only
            matching.set()
            release.wait(10)
        return real_start_run(**kwargs)

    monkeypatch.setattr(alerts.triggers, "start_run", held_start_run)
    headers = {"Authorization": f"Bearer {SECRET}"}

    def deliver(external_id: str) -> int:
        body = json.dumps({"title": "Ransomware", "external_id": external_id}).encode()
        try:
            return accept("edr", headers, body).status
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(deliver, "det-1")  # its matching holds its transaction open
        assert matching.wait(10)
        second = pool.submit(deliver, "det-2")
        try:
            # It would wait on the source's row until the first matching committed.
            assert second.result(timeout=5) == 202
            assert not first.done()
        finally:
            release.set()
        assert first.result(timeout=10) == 202
    assert Run.objects.count() == 2
