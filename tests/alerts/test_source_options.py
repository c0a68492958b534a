"""Grafana's HMAC, per-source rate limits and custom JMESPath mappings."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.test import Client

from alerts.models import Alert
from alerts.sources import SourceInvalid, create_source

pytestmark = pytest.mark.django_db
SECRET = "grafana-hmac-secret-0123456789"
BODY = json.dumps(
    {"title": "Disk full on db-01", "severity": "high", "external_id": "g-1"}
).encode()


def post(slug: str, body: bytes = BODY, **headers: str) -> Any:
    return Client().post(
        f"/api/v1/hooks/{slug}/", body, content_type="application/json", headers=headers
    )


def test_grafana_hmac_of_the_body_verifies(encryption_keys: list[str]) -> None:
    create_source(slug="graf", format="generic", auth="grafana", secret=SECRET, actor="user:alice")
    good = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert post("graf", **{"X-Grafana-Alerting-Signature": good}).status_code == 202
    assert post("graf", BODY + b"\n", **{"X-Grafana-Alerting-Signature": good}).status_code == 401


def test_grafana_hmac_with_a_timestamp_header_signs_it_and_refuses_stale_ones(
    encryption_keys: list[str],
) -> None:
    create_source(slug="graf", format="generic", auth="grafana", secret=SECRET, actor="user:alice",
                  auth_options={"signature_header": "X-Sig", "timestamp_header": "X-Sig-Time"})  # fmt: skip

    def signed(stamp: str) -> dict[str, str]:
        digest = hmac.new(SECRET.encode(), stamp.encode() + b":" + BODY, hashlib.sha256).hexdigest()
        return {"X-Sig": digest, "X-Sig-Time": stamp}

    assert post("graf", **signed(str(int(time.time())))).status_code == 202
    assert post("graf", **signed(str(int(time.time()) - 400))).status_code == 401


def test_a_source_over_its_rate_limit_gets_429_with_retry_after(encryption_keys: list[str]) -> None:
    create_source(slug="noisy", format="generic", auth="bearer", secret=SECRET, actor="user:alice",
                  rate_limit_per_minute=60)  # fmt: skip
    answers = [post("noisy", json.dumps({"title": f"a{n}"}).encode(), Authorization=f"Bearer {SECRET}")
               for n in range(5)]  # fmt: skip
    assert [a.status_code for a in answers[:3]] == [202, 202, 202]  # a burst of about three seconds
    limited = answers[3]
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert Alert.objects.count() == 3


def test_a_custom_jmespath_mapping_normalises_any_shape(encryption_keys: list[str]) -> None:
    mapping = {"alerts": "events", "title": "summary", "severity": "prio", "external_id": "key",
               "hosts": "target.host", "ips": "target.addresses"}  # fmt: skip
    create_source(
        slug="custom",
        format="generic",
        auth="bearer",
        secret=SECRET,
        actor="user:alice",
        mapping=mapping,
    )
    body = json.dumps({"events": [{"summary": "Beaconing", "prio": "critical", "key": "e-9",
                                   "target": {"host": "ws-9", "addresses": ["10.1.1.9", "not-an-ip"]}}]}).encode()  # fmt: skip
    assert post("custom", body, Authorization=f"Bearer {SECRET}").status_code == 202
    alert = Alert.objects.get()
    assert (alert.title, alert.severity, alert.external_id) == ("Beaconing", "critical", "e-9")
    assert alert.entities == {"hosts": ["ws-9"], "ips": ["10.1.1.9"]}
    missing = post(
        "custom",
        json.dumps({"events": [{"prio": "low"}]}).encode(),
        Authorization=f"Bearer {SECRET}",
    )
    assert missing.status_code == 400
    assert "mapping.title" in missing.json()["error"]


@pytest.mark.parametrize(("mapping", "field"), [({"severity": "x"}, "mapping"),
                                                ({"title": "a", "colour": "b"}, "mapping.colour"),
                                                ({"title": "a[?"}, "mapping.title")])  # fmt: skip
def test_a_bad_mapping_is_refused_when_the_source_is_created(
    encryption_keys: list[str], mapping: dict[str, str], field: str
) -> None:
    with pytest.raises(SourceInvalid) as refused:
        create_source(
            slug="bad",
            format="generic",
            auth="bearer",
            secret=SECRET,
            actor="user:alice",
            mapping=mapping,
        )
    assert refused.value.field == field
