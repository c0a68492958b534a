"""A vendor's 429 parks the step until the time the vendor named; no worker waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.dispatch import InlineDispatcher
from core.models import StepRun
from core.reconciler import sweep
from core.runs import start_run
from integrations.lab.connections import ensure_lab_connections
from tests.core.factories import definition, published_version

pytestmark = pytest.mark.django_db(transaction=True)
HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"


def test_a_429_with_falcons_header_waits_until_then_and_then_succeeds(
    lab: Any, inline_dispatch: InlineDispatcher, time_machine: Any, encryption_keys: list[str]
) -> None:
    ensure_lab_connections(lab.url, actor="system:test", smtp=lab.smtp_settings())
    lab["crowdstrike"].rate_limited(20, path="/devices/entities/devices/v2")
    step = {"id": "lookup", "action": "crowdstrike.get_host", "with": {"device_id": HOST},
            "retry": {"attempts": 2, "backoff": "1s", "jitter": False}}  # fmt: skip
    version = published_version(definition(step))
    run = start_run(playbook=version.playbook, inputs={}, actor="user:bob")
    asked_at = timezone.now()
    inline_dispatch.drain()

    unit = StepRun.objects.get(run=run, step_id="lookup")
    assert unit.status == "retry_wait"
    assert unit.lease_owner == ""  # no worker holds it while it waits
    assert unit.lease_expires_at is None
    assert unit.next_attempt_at is not None
    waited = (unit.next_attempt_at - asked_at).total_seconds()
    assert 18 <= waited <= 21  # the vendor's time, not the 1 s backoff
    assert unit.error["retry_after"] is not None

    time_machine.move_to(asked_at + timedelta(seconds=10))
    assert sweep().retries_fired == 0  # not yet
    time_machine.move_to(asked_at + timedelta(seconds=21))
    assert sweep().retries_fired == 1
    inline_dispatch.drain()
    unit.refresh_from_db()
    run.refresh_from_db()
    assert (run.status, unit.status, unit.attempts) == ("succeeded", "succeeded", 2)
    assert unit.output["hostname"] == "WS-FIN-042"
