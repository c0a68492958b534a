"""Concurrent copies of one alert on PostgreSQL: one alert, every delivery kept."""

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
