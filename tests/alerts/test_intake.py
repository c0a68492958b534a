"""POST /api/v1/hooks/{source}/: every refusal, every scheme, duplicates, dedup, all-or-nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from standardwebhooks.webhooks import Webhook

from alerts.models import Alert, Delivery, IntakeCounter
from alerts.sources import create_source, rotate_secret
from tests.alerts.test_mappings import PAYLOADS

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-hooks-0123456789"
WH_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-key-0123456789").decode()


def generic(title: str = "Ransomware on WS-FIN-042", **extra: Any) -> bytes:
    return json.dumps({"title": title, "severity": "critical", "external_id": "det-1",
                       "observables": [{"type": "host", "value": "WS-FIN-042"}, {"type": "ip", "value": "10.0.0.5"},
                                       {"type": "sha256", "value": "ab" * 32}], **extra}).encode()  # fmt: skip


def alertmanager(*alerts: dict[str, Any], status: str = "firing") -> bytes:
    return json.dumps({"version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": status, "receiver": "soar",
                       "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://am:9093", "alerts": list(alerts)}).encode()  # fmt: skip


def am_alert(
    name: str, instance: str, status: str = "firing", fingerprint: str = "a1b2c3d4e5f60718"
) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": name, "instance": instance, "severity": "warning"},
            "annotations": {"summary": f"{name} on {instance}"}, "startsAt": "2026-12-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom", "fingerprint": fingerprint}  # fmt: skip


@pytest.fixture
def bearer(encryption_keys: list[str]) -> Any:
    return create_source(
        slug="edr", format="generic", auth="bearer", secret=SECRET, actor="user:alice"
    )


def post(slug: str, body: bytes, **headers: str) -> Any:
    return Client().post(f"/api/v1/hooks/{slug}/", body, content_type="application/json",
                         headers=headers)  # fmt: skip


def test_an_accepted_delivery_is_stored_verbatim_and_normalised(bearer: Any) -> None:
    body = generic()
    answer = post("edr", body, Authorization=f"Bearer {SECRET}")
    assert answer.status_code == 202
    (delivery,) = Delivery.objects.all()
    assert delivery.body == body.decode()
    (alert,) = Alert.objects.all()
    assert (alert.title, alert.severity, alert.status, alert.external_id) == (
        "Ransomware on WS-FIN-042", "critical", "firing", "det-1")  # fmt: skip
    assert alert.entities == {"hosts": ["WS-FIN-042"], "ips": ["10.0.0.5"], "hashes": ["ab" * 32]}
    assert answer.json() == {"alert": alert.pk, "alerts": [alert.pk], "runs": [], "duplicate": False,
                             "delivery": "sha256:" + hashlib.sha256(body).hexdigest()}  # fmt: skip


@pytest.mark.parametrize(("slug", "body", "headers", "status", "outcome"), [
    ("nope", b"{}", {}, 404, "unknown_source"),
    ("edr", generic(), {"Authorization": "Bearer wrong-token-value"}, 401, "unauthenticated"),
    ("edr", generic(), {}, 401, "unauthenticated"),
    ("edr", b"{not json", {"Authorization": f"Bearer {SECRET}"}, 400, "malformed_json"),
    ("edr", '{"title": "x"}'.encode("utf-16"), {"Authorization": f"Bearer {SECRET}"}, 400, "malformed_json"),
    ("edr", b'{"severity": "high"}', {"Authorization": f"Bearer {SECRET}"}, 400, "bad_payload"),
    ("edr", b'{"title": "x"' + b" " * 2_000_000 + b"}", {"Authorization": f"Bearer {SECRET}"}, 413, "too_large"),
])  # fmt: skip
def test_every_refusal_has_its_status_is_counted_and_stores_nothing(
    bearer: Any, slug: str, body: bytes, headers: dict[str, str], status: int, outcome: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    answer = post(slug, body, **headers)
    assert answer.status_code == status
    assert answer.json()["error"]
    assert not Delivery.objects.exists()
    assert not Alert.objects.exists()
    assert counted(slug, outcome) == 1
    assert outcome in caplog.text
    assert SECRET not in caplog.text
    metrics = Client().get("/metrics").content.decode()
    assert f'bulwark_alert_deliveries_total{{outcome="{outcome}",source="{slug}"}} 1.0' in metrics


def test_a_bad_alert_in_a_group_stores_none_of_the_group(encryption_keys: list[str]) -> None:
    create_source(
        slug="prom", format="alertmanager", auth="bearer", secret=SECRET, actor="user:alice"
    )
    broken = {**am_alert("Disk", "web-01:9100"), "startsAt": "yesterday"}
    answer = post(
        "prom",
        alertmanager(am_alert("CPU", "web-02:9100"), broken),
        Authorization=f"Bearer {SECRET}",
    )
    assert answer.status_code == 400
    assert "alerts[1].startsAt" in answer.json()["error"]
    assert not Alert.objects.exists()
    assert not Delivery.objects.exists()


def test_an_alertmanager_group_gives_one_alert_per_element_and_resolved_updates_it(
    encryption_keys: list[str],
) -> None:
    create_source(
        slug="prom", format="alertmanager", auth="bearer", secret=SECRET, actor="user:alice"
    )
    group = alertmanager(
        am_alert("CPU", "web-02:9100", fingerprint="f1"),
        am_alert("Disk", "10.0.0.9:9100", fingerprint="f2"),
    )
    assert post("prom", group, Authorization=f"Bearer {SECRET}").status_code == 202
    cpu, disk = Alert.objects.order_by("id")
    assert (cpu.title, cpu.severity, cpu.entities["hosts"]) == (
        "CPU on web-02:9100",
        "medium",
        ["web-02"],
    )
    assert disk.entities == {"hosts": ["10.0.0.9"], "ips": ["10.0.0.9"]}
    resolved = alertmanager(
        am_alert("CPU", "web-02:9100", status="resolved", fingerprint="f1"), status="resolved"
    )
    assert post("prom", resolved, Authorization=f"Bearer {SECRET}").status_code == 202
    cpu.refresh_from_db()
    assert (cpu.status, cpu.count) == ("resolved", 2)
    assert Alert.objects.count() == 2


def test_a_storm_of_one_alert_is_one_alert_with_a_count(bearer: Any) -> None:
    for n in range(30):
        assert post("edr", generic(note=n), Authorization=f"Bearer {SECRET}").status_code == 202
    (alert,) = Alert.objects.all()
    assert alert.count == 30
    assert Delivery.objects.count() == 30


def test_the_same_alert_after_the_dedup_window_is_a_new_alert(
    bearer: Any, time_machine: Any
) -> None:
    post("edr", generic(), Authorization=f"Bearer {SECRET}")
    time_machine.move_to(datetime.now(UTC) + timedelta(hours=2))
    post("edr", generic(note="later"), Authorization=f"Bearer {SECRET}")
    assert Alert.objects.count() == 2


def test_an_identical_body_sent_again_is_a_duplicate(bearer: Any) -> None:
    assert post("edr", generic(), Authorization=f"Bearer {SECRET}").status_code == 202
    again = post("edr", generic(), Authorization=f"Bearer {SECRET}")
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    # The alert the first delivery stored; this one started no run.
    assert (again.json()["alert"], again.json()["runs"]) == (Alert.objects.get().pk, [])
    assert Alert.objects.get().count == 1
    assert counted("edr", "duplicate") == 1


def counted(source: str, outcome: str) -> int:
    rows = IntakeCounter.objects.filter(source=source, outcome=outcome)
    return int(rows.aggregate(total=Sum("count"))["total"] or 0)


def test_concurrent_counts_spread_over_rows_and_metrics_sum_them(bearer: Any) -> None:
    for n in range(40):
        assert post("edr", generic(copy=n), Authorization=f"Bearer {SECRET}").status_code == 202
    rows = IntakeCounter.objects.filter(source="edr", outcome="accepted")
    assert rows.count() > 1  # 40 deliveries on one of 16 rows each: never all on one
    assert counted("edr", "accepted") == 40
    metrics = Client().get("/metrics").content.decode()
    assert 'bulwark_alert_deliveries_total{outcome="accepted",source="edr"} 40.0' in metrics


def sign(body: bytes, msg_id: str, at: datetime | None = None) -> dict[str, str]:
    """Headers made by the standardwebhooks library itself, as a sender would."""
    at = at or datetime.now(UTC)
    signature = Webhook(WH_SECRET).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def test_standard_webhooks_signatures_from_the_library_verify_and_ids_dedupe(
    encryption_keys: list[str],
) -> None:
    create_source(
        slug="sw", format="generic", auth="standard_webhooks", secret=WH_SECRET, actor="user:alice"
    )
    body = generic()
    assert post("sw", body, **sign(body, "msg_1")).status_code == 202
    assert Delivery.objects.get().delivery_id == "msg_1"
    again = post("sw", generic(note="retry"), **sign(generic(note="retry"), "msg_1"))
    assert again.status_code == 200  # a seen webhook-id: acknowledged, not stored again
    assert Delivery.objects.count() == 1


def test_a_standard_webhooks_replay_outside_five_minutes_is_refused(
    encryption_keys: list[str],
) -> None:
    create_source(
        slug="sw", format="generic", auth="standard_webhooks", secret=WH_SECRET, actor="user:alice"
    )
    body = generic()
    old = post("sw", body, **sign(body, "msg_2", datetime.now(UTC) - timedelta(minutes=6)))
    assert old.status_code == 401
    forged = {
        **sign(body, "msg_3"),
        "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode(),
    }
    assert post("sw", body, **forged).status_code == 401
    garbled = {**sign(body, "msg_4"), "webhook-signature": "garbage"}
    assert post("sw", body, **garbled).status_code == 401


def test_github_style_signatures_verify_over_the_raw_body(encryption_keys: list[str]) -> None:
    create_source(slug="gh", format="generic", auth="github", secret=SECRET, actor="user:alice")
    body = generic()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert post("gh", body, **{"X-Hub-Signature-256": good}).status_code == 202
    assert post("gh", body + b" ", **{"X-Hub-Signature-256": good}).status_code == 401


def test_basic_auth_and_rotation_keep_both_secrets_valid_until_the_next(
    encryption_keys: list[str],
) -> None:
    source = create_source(slug="graf", format="generic", auth="basic", secret="grafana:old-password-12345",
                           actor="user:alice")  # fmt: skip

    def basic(pair: str) -> str:
        return "Basic " + base64.b64encode(pair.encode()).decode()

    assert (
        post("graf", generic(n=1), Authorization=basic("grafana:old-password-12345")).status_code
        == 202
    )
    source = rotate_secret(source=source, secret="grafana:new-password-67890", actor="user:alice")
    assert (
        post("graf", generic(n=2), Authorization=basic("grafana:old-password-12345")).status_code
        == 202
    )
    assert (
        post("graf", generic(n=3), Authorization=basic("grafana:new-password-67890")).status_code
        == 202
    )
    rotate_secret(source=source, secret="grafana:third-password-000", actor="user:alice")
    assert (
        post("graf", generic(n=4), Authorization=basic("grafana:old-password-12345")).status_code
        == 401
    )


def test_a_nul_character_in_a_payload_is_stored_and_the_body_kept_verbatim(bearer: Any) -> None:
    # JSON allows "\u0000", which PostgreSQL's jsonb refuses; the literal text \u0000
    # (an escaped backslash) is ordinary text and must come through unchanged.
    body = generic(title="WS-FIN-042\u0000 said \\u0000", host_note="a\u0000b")
    assert post("edr", body, Authorization=f"Bearer {SECRET}").status_code == 202
    assert Delivery.objects.get().body == body.decode()
    alert = Alert.objects.get()
    nul = "\ufffd" if connection.vendor == "postgresql" else "\u0000"
    assert alert.title == f"WS-FIN-042{nul} said \\u0000"
    assert alert.raw["host_note"] == f"a{nul}b"


def test_a_url_token_authenticates_a_sender_that_can_set_no_header(
    encryption_keys: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Splunk's webhook alert action sends to a URL and nothing more.
    source = create_source(slug="splunk", format="splunk", auth="url_token", secret=SECRET,
                           actor="user:alice")  # fmt: skip
    body = (PAYLOADS / "splunk.json").read_bytes()

    def to(query: str, payload: bytes = body, slug: str = "splunk") -> int:
        answer = Client().post(
            f"/api/v1/hooks/{slug}/{query}", payload, content_type="application/json"
        )
        return int(answer.status_code)  # fmt: skip

    assert to(f"?token={SECRET}") == 202
    assert to("") == 401
    assert to("?token=wrong-token-value-000") == 401
    rotate_secret(source=source, secret="splunk-token-next-0123456789", actor="user:alice")
    assert to(f"?token={SECRET}", payload=body.replace(b"{", b"{ ", 1)) == 202  # still valid
    assert to("?token=splunk-token-next-0123456789", payload=body.replace(b"{", b"{  ", 1)) == 202
    assert SECRET not in caplog.text
    # A bearer source does not take a URL token instead.
    create_source(slug="edr", format="generic", auth="bearer", secret=SECRET, actor="user:alice")
    assert to(f"?token={SECRET}", payload=generic(), slug="edr") == 401
