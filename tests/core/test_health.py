"""/healthz and /metrics."""

from __future__ import annotations

import pytest
from django.test import Client

from core.dispatch import InlineDispatcher
from core.runs import start_run
from tests.core.factories import definition, echo, published_version


@pytest.mark.django_db
def test_healthz_reports_the_database() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db(transaction=True)
def test_metrics_count_runs_by_status_queue_depth_and_step_durations(
    inline_dispatch: InlineDispatcher,
) -> None:
    version = published_version(definition(echo("a"), echo("b", "a")))
    start_run(playbook=version.playbook, actor="system:test")
    inline_dispatch.drain()
    start_run(playbook=version.playbook, actor="system:test")
    text = Client().get("/metrics").content.decode()
    assert 'bulwark_runs{status="succeeded"} 1.0' in text
    assert 'bulwark_runs{status="running"} 1.0' in text
    assert 'bulwark_queue_depth{state="queued"} 1.0' in text
    assert "bulwark_step_duration_seconds_count 2.0" in text
    assert "bulwark_reconciler_recoveries" in text


@pytest.mark.django_db
def test_metrics_want_the_bearer_token_when_one_is_configured(settings) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics").status_code == 200


@pytest.mark.django_db
def test_an_unexpected_api_error_is_json_and_does_not_leak_its_message(
    bob, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.api import views
    from tests.conftest import client_for

    def explode(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(views.RunViewSet, "get_queryset", explode)
    response = client_for(bob).get("/api/v1/runs/")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error", "errors": []}
    assert "hunter2" not in response.content.decode()
