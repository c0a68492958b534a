"""Alerts start playbooks: a trigger's source and `if`, inputs from the alert, once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, AlertRun
from alerts.sources import create_source
from core.dispatch import InlineDispatcher
from core.models import Run
from core.reconciler import sweep
from tests.core.factories import definition, echo, published_version

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "s3cret-for-hooks-0123456789"
TRIGGER = {"source": "edr", "if": "alert.severity in ['high', 'critical']",
           "inputs": {"host": "{{ alert.entities.hosts[0] }}", "title": "{{ alert.title }}"}}  # fmt: skip
INPUTS = {"host": {"type": "string", "required": True}, "title": {"type": "string"}}


def playbook(name: str = "contain", *triggers: dict[str, Any]) -> Any:
    return published_version(
        definition(echo("first"), name=name, inputs=INPUTS, triggers=list(triggers) or [TRIGGER])
    )


def deliver(severity: str = "critical", **extra: Any) -> Any:
    body = {"title": "Ransomware on WS-FIN-042", "severity": severity, "external_id": "det-1",
            "observables": [{"type": "host", "value": "WS-FIN-042"}], **extra}  # fmt: skip
    return Client().post("/api/v1/hooks/edr/", json.dumps(body), content_type="application/json",
                         headers={"Authorization": f"Bearer {SECRET}"})  # fmt: skip


@pytest.fixture
def source(encryption_keys: list[str]) -> Any:
    return create_source(
        slug="edr", format="generic", auth="bearer", secret=SECRET, actor="user:alice"
    )


def test_a_matching_alert_starts_one_run_of_the_active_version_with_inputs_from_the_alert(
    source: Any, inline_dispatch: InlineDispatcher
) -> None:
    version = playbook()
    answer = deliver()
    assert answer.status_code == 202
    (run,) = Run.objects.all()
    # SPEC §5: the webhook answers with the alert and the runs it started.
    alert_id = Alert.objects.get().pk
    assert (answer.json()["alert"], answer.json()["runs"], answer.json()["duplicate"]) == (
        alert_id,
        [run.pk],
        False,
    )
    assert (run.version_id, run.actor) == (version.pk, f"alert:{Alert.objects.get().pk}")
    assert run.inputs == {"host": "WS-FIN-042", "title": "Ransomware on WS-FIN-042"}
    assert run.context["alert"]["severity"] == "critical"
    link = AlertRun.objects.get()
    assert (link.run_id, link.trigger_index) == (run.pk, 0)
    assert Alert.objects.get().triggered_at is not None
    inline_dispatch.drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_storm_of_copies_starts_one_run(source: Any) -> None:
    playbook()
    for n in range(30):
        assert deliver(copy=n).status_code == 202
    assert Run.objects.count() == 1
    assert Alert.objects.get().count == 30


def test_a_false_condition_or_another_source_starts_nothing(source: Any) -> None:
    playbook("other-source", {**TRIGGER, "source": "siem"})
    playbook("contain")
    deliver(severity="low")
    assert not Run.objects.exists()
    assert Alert.objects.get().triggered_at is not None


def test_a_failing_trigger_is_recorded_on_the_alert_and_the_others_still_run(source: Any) -> None:
    playbook(
        "broken", {"source": "edr", "inputs": {"title": "{{ alert.title }}"}}
    )  # no host: refused
    playbook("contain")
    assert deliver().status_code == 202
    alert = Alert.objects.get()
    (error,) = alert.trigger_errors
    assert error["trigger"] == "broken v1 triggers[0]"
    assert "host" in error["error"]
    assert [r.playbook.name for r in Run.objects.all()] == ["contain"]


def test_an_alert_whose_matching_was_interrupted_is_matched_by_the_scheduler(
    source: Any, time_machine: Any
) -> None:
    playbook()
    now = timezone.now()
    alert = Alert.objects.create(source=source, fingerprint="f" * 64, title="T", severity="high",
                                 entities={"hosts": ["WS-1"]}, raw={}, first_seen_at=now, last_seen_at=now)  # fmt: skip
    sweep()
    assert not Run.objects.exists()  # too fresh: its own matching may still be running
    time_machine.move_to(now + timedelta(seconds=11))
    sweep()
    assert Run.objects.get().inputs["host"] == "WS-1"
    sweep()
    assert Run.objects.count() == 1
    alert.refresh_from_db()
    assert alert.triggered_at is not None


def test_a_thousand_copies_within_ten_seconds_start_exactly_one_run(source: Any) -> None:
    import time

    playbook()
    started = time.monotonic()
    statuses = {deliver(copy=n).status_code for n in range(1000)}
    took = time.monotonic() - started
    assert statuses == {202}
    assert Run.objects.count() == 1
    assert Alert.objects.get().count == 1000
    print(f"\n1,000 copies of one alert accepted in {took:.1f}s: one alert, one run")


def test_alerts_of_a_source_no_trigger_names_are_closed_by_the_scheduler_in_bulk(
    source: Any, time_machine: Any
) -> None:
    playbook("elsewhere", {**TRIGGER, "source": "siem"})
    for n in range(3):
        deliver(copy=n, external_id=f"det-{n}")
    assert set(Alert.objects.values_list("triggered_at", flat=True)) == {
        None
    }  # the request skipped matching
    time_machine.move_to(timezone.now() + timedelta(seconds=11))
    sweep()
    assert None not in set(Alert.objects.values_list("triggered_at", flat=True))
    assert not Run.objects.exists()


def test_the_library_playbook_contains_the_host_a_recorded_falcon_detection_names(
    encryption_keys: list[str], inline_dispatch: InlineDispatcher
) -> None:
    """The demo playbook's trigger reads Falcon's flattened `data` keys, as the webhook sends them."""
    from pathlib import Path

    from playbooks.versions import import_definition

    library = Path(__file__).resolve().parents[2] / "playbooks" / "library"
    import_definition(definition=(library / "contain-compromised-host.yaml").read_text(),
                      publish=True, actor="system:test")  # fmt: skip
    create_source(slug="crowdstrike-detections", format="crowdstrike", auth="bearer",
                  secret=SECRET, actor="user:alice")  # fmt: skip
    body = (Path(__file__).parent / "payloads" / "crowdstrike_detection.json").read_text()
    answer = Client().post("/api/v1/hooks/crowdstrike-detections/", body,
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {SECRET}"})  # fmt: skip
    assert answer.status_code == 202, answer.content
    assert Alert.objects.get().trigger_errors == []
    (run,) = Run.objects.all()
    assert run.inputs["host_id"] == "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
    assert (
        run.inputs["sha256"] == "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
    )
