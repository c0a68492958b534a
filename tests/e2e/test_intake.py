"""Alert intake over HTTP: `serve` (gunicorn) in front, real worker and scheduler
processes behind, on PostgreSQL + Redis."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from alerts.models import Alert, AlertRun, Delivery
from alerts.sources import create_source
from core.models import Run
from tests.core.factories import definition, echo, published_version
from tests.e2e.conftest import Processes, wait_for
from tests.integrations.conftest import encryption_keys

__all__ = ["encryption_keys"]

SECRET = "s3cret-for-hooks-0123456789"


@pytest.fixture
def hook(encryption_keys: list[str], processes: Processes) -> str:
    create_source(slug="edr", format="generic", auth="bearer", secret=SECRET, actor="user:alice")
    published_version(definition(echo("first"), name="contain", triggers=[{"source": "edr"}]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    processes.start("web", "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", "2", "--threads", "4")  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "serve to answer /healthz", interval=0.1)
    return f"{base}/api/v1/hooks/edr/"


def deliver_copies(url: str, copies: int, concurrency: int) -> list[int]:
    """`copies` deliveries of one alert (distinct bodies, so none is a duplicate delivery),
    sent by `concurrency` clients at once."""

    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    local = threading.local()

    def send(n: int) -> int:
        if not hasattr(local, "http"):  # one keep-alive client a thread, as a sender has
            local.http = httpx.Client(headers=headers, timeout=30)
        body = json.dumps({"title": "Ransomware on WS-FIN-042", "external_id": "det-1", "copy": n})
        return int(local.http.post(url, content=body).status_code)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(send, range(copies)))


def one_run_finished() -> Any:
    run = Run.objects.first()
    return run is not None and run.finished_at is not None


def test_fifty_concurrent_deliveries_of_one_alert_over_http_start_one_run(
    hook: str, processes: Processes
) -> None:
    statuses = deliver_copies(hook, 50, concurrency=50)
    assert statuses == [202] * 50, processes.log_text()
    (alert,) = Alert.objects.all()
    assert alert.count == 50
    assert Delivery.objects.count() == 50
    assert alert.deliveries.count() == 50
    wait_for(one_run_finished, 30, "the alert's run to finish", interval=0.2)
    time.sleep(1.5)  # a second run would have been started by now (matching is at intake)
    (run,) = Run.objects.all()
    assert run.status == "succeeded", processes.log_text()
    assert AlertRun.objects.get().run_id == run.pk


def test_a_thousand_copies_over_http_within_ten_seconds_start_exactly_one_run(
    hook: str, processes: Processes
) -> None:
    started = time.monotonic()
    statuses = deliver_copies(hook, 1000, concurrency=16)
    took = time.monotonic() - started
    assert set(statuses) == {202}, processes.log_text()
    print(f"\n1,000 copies of one alert over HTTP (16 clients) accepted in {took:.1f}s")
    assert took < 10, "the copies did not all arrive within ten seconds: the premise fails"
    assert Alert.objects.get().count == 1000
    wait_for(one_run_finished, 30, "the alert's run to finish", interval=0.2)
    time.sleep(1.5)
    assert Run.objects.count() == 1


def test_serve_s_access_log_redacts_a_url_token(hook: str, processes: Processes) -> None:
    token = "splunk-url-token-0123456789"
    create_source(
        slug="splunk", format="splunk", auth="url_token", secret=token, actor="user:alice"
    )
    url = hook.replace("/edr/", "/splunk/")
    body = {"sid": "scheduler__admin__search__RMD5", "search_name": "Brute force", "result": {}}
    assert httpx.post(f"{url}?token={token}", json=body, timeout=10).status_code == 202
    assert httpx.post(f"{url}?token=wrong-{token}", json=body, timeout=10).status_code == 401
    wait_for(
        lambda: (processes.logs / "web.log").read_text().count("/splunk/") >= 2, 5, "the access log"
    )
    log = (processes.logs / "web.log").read_text()
    assert token not in log
    assert log.count("/api/v1/hooks/splunk/?token=[redacted]") == 2
