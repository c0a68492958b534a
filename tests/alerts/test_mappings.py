"""Recorded vendor-format payloads, one test each: what each mapping makes of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerts.mappings import MappingError, normalise

PAYLOADS = Path(__file__).parent / "payloads"


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def one(fmt: str, name: str) -> Any:
    (alert,) = normalise(fmt, load(name))
    return alert


def test_grafana_firing() -> None:
    alert = one("grafana", "grafana_firing.json")
    assert (alert.title, alert.severity, alert.status) == (
        "5xx rate above 5% on api-01",
        "critical",
        "firing",
    )
    assert alert.external_id == "8c1d2e3f4a5b6c7d"
    assert alert.entities == {"hosts": ["api-01"]}


def test_grafana_resolved_is_the_same_alert_resolved() -> None:
    firing, resolved = (
        one("grafana", "grafana_firing.json"),
        one("grafana", "grafana_resolved.json"),
    )
    assert resolved.status == "resolved"
    assert resolved.dedup_key == firing.dedup_key


def test_splunk_first_result_row() -> None:
    alert = one("splunk", "splunk.json")
    assert (alert.title, alert.severity) == ("Brute force against VPN", "high")
    assert alert.external_id.startswith("scheduler__admin__search__")
    assert alert.entities == {"hosts": ["vpn-gw-01"], "users": ["jdoe"], "ips": ["203.0.113.77"]}


def test_elastic_security_context_alerts_are_one_alert_each() -> None:
    first, second = normalise("elastic", load("elastic_security.json"))
    assert (first.title, first.severity, first.external_id) == (
        "Suspicious PowerShell", "high", "5e0f1a2b-0000-4000-8000-000000000001")  # fmt: skip
    assert first.entities == {"hosts": ["ws-fin-042"], "users": ["jdoe"], "ips": ["10.20.4.42"]}
    assert second.entities["hosts"] == ["ws-hr-007"]
    assert second.entities["hashes"] == [
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
    ]


def test_crowdstrike_detection_with_flattened_keys() -> None:
    alert = one("crowdstrike", "crowdstrike_detection.json")
    assert (alert.title, alert.severity) == ("Ransomware behaviour", "critical")
    assert alert.external_id == "ldt:4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90:1234567"
    assert alert.entities["hosts"] == ["WS-FIN-042", "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"]
    assert alert.occurred_at is not None
    assert alert.occurred_at.timestamp() == 1764580800


def test_wazuh_level_10_is_high() -> None:
    alert = one("wazuh", "wazuh_ssh.json")
    assert (alert.severity, alert.external_id) == ("high", "1764584553.1234567")
    assert alert.entities == {
        "hosts": ["srv-web-01"],
        "ips": ["10.20.9.11", "198.51.100.7"],
        "users": ["root"],
    }
    assert alert.occurred_at is not None


def test_sentinel_new_incident_and_its_closing_are_one_alert() -> None:
    new, closed = one("sentinel", "sentinel_new.json"), one("sentinel", "sentinel_closed.json")
    assert (new.title, new.severity, new.status, new.external_id) == (
        "Multiple failed sign-ins followed by success", "high", "firing", "4211")  # fmt: skip
    assert new.entities == {"users": ["jdoe"], "ips": ["198.51.100.7"]}
    assert closed.status == "resolved"
    assert closed.dedup_key == new.dedup_key


def test_ocsf_detection_finding_create_and_close() -> None:
    created, closed = one("ocsf", "ocsf_create.json"), one("ocsf", "ocsf_close.json")
    assert (created.severity, created.status, created.source) == (
        "high",
        "firing",
        "AWS Security Hub",
    )
    assert created.entities == {"hosts": ["i-0abc123"], "ips": ["198.51.100.7"]}
    assert created.occurred_at is not None
    assert closed.status == "resolved"
    assert closed.dedup_key == created.dedup_key


def test_alertmanager_group_is_one_alert_per_element_and_its_resolution_matches() -> None:
    first, second, third = normalise("alertmanager", load("alertmanager_group_firing.json"))
    assert (first.title, first.severity, first.status, first.source) == (
        "Node 10.20.1.15 is down", "critical", "firing", "soar")  # fmt: skip
    assert first.entities == {"hosts": ["10.20.1.15"], "ips": ["10.20.1.15"]}
    # No summary: the alert name; no severity label: the group's common one.
    assert (second.title, second.severity) == ("NodeDown", "critical")
    assert second.entities == {"hosts": ["db-02.internal"]}
    assert third.entities == {"hosts": ["2001:db8::7"], "ips": ["2001:db8::7"]}
    assert third.severity == "medium"  # warning, on the one scale
    assert first.occurred_at is not None
    assert first.occurred_at.minute == 58
    (resolved,) = normalise("alertmanager", load("alertmanager_group_resolved.json"))
    assert resolved.status == "resolved"
    assert resolved.dedup_key == first.dedup_key


def test_generic_json_with_every_observable_kind() -> None:
    alert = one("generic", "generic.json")
    assert (alert.title, alert.severity, alert.source, alert.external_id) == (
        "Beaconing to a known C2 domain", "high", "zeek", "zeek-notice-88213")  # fmt: skip
    assert alert.entities == {
        "hosts": ["ws-mkt-011"], "users": ["asmith"], "ips": ["10.20.7.31"],
        "urls": ["http://update-check.example.net/p"], "domains": ["update-check.example.net"],
    }  # fmt: skip
    assert alert.occurred_at is not None
    assert alert.occurred_at.hour == 8


def test_splunk_malware_row_gives_hashes_urls_and_the_row_s_severity() -> None:
    alert = one("splunk", "splunk_malware.json")
    assert (alert.title, alert.severity, alert.source) == (
        "Malware download detected", "critical", "SA-Security")  # fmt: skip
    assert alert.entities == {
        "hosts": ["ws-eng-104"], "users": ["bwayne"], "ips": ["10.20.3.104"],
        "hashes": ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        "urls": ["http://files.example.org/setup.exe"],
    }  # fmt: skip
    assert alert.dedup_key == (alert.external_id,)


def test_wazuh_file_integrity_alert_with_a_negative_offset() -> None:
    alert = one("wazuh", "wazuh_fim.json")
    assert (alert.title, alert.severity) == ("Integrity checksum changed.", "medium")
    assert alert.entities == {"hosts": ["srv-db-03"], "ips": ["10.20.5.33"]}
    assert alert.occurred_at is not None
    assert alert.occurred_at.utcoffset().total_seconds() == -5 * 3600  # type: ignore[union-attr]


def test_crowdstrike_incident_notification() -> None:
    alert = one("crowdstrike", "crowdstrike_incident.json")
    assert (alert.title, alert.severity) == ("Lateral movement from WS-FIN-042", "high")
    assert alert.external_id == "inc:4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90:0a1b2c3d4e5f"
    assert alert.entities == {
        "hosts": ["WS-FIN-042"],
        "users": ["CORP\\jdoe"],
        "ips": ["10.20.4.42"],
    }
    assert alert.occurred_at is not None
    assert alert.occurred_at.timestamp() == 1764590400


def test_elastic_recovered_rule_resolves_and_lists_of_ips_give_each() -> None:
    alert = one("elastic", "elastic_rule_recovered.json")
    assert (alert.title, alert.status) == ("High CPU on db hosts", "resolved")
    assert alert.entities == {"hosts": ["db-07.internal"]}
    assert alert.occurred_at is not None
    assert alert.occurred_at.second == 58
    first, _ = normalise("elastic", load("elastic_security.json"))
    assert first.status == "firing"
    assert first.occurred_at is not None
    assert first.occurred_at.hour == 11


@pytest.mark.parametrize(("fmt", "payload", "where"), [
    ("ocsf", {"class_uid": 1001, "finding_info": {"uid": "x"}}, "class_uid"),
    ("sentinel", {"object": {}}, "object.properties"),
    ("wazuh", {"rule": {"level": "high"}}, "rule.level"),
    ("elastic", {"context": {"alerts": [{"host.name": "h"}]}}, "context.alerts[0]"),
    ("splunk", {"search_name": "x"}, "sid"),
    ("crowdstrike", {"meta": {}}, "data"),
])  # fmt: skip
def test_a_payload_missing_what_its_format_needs_names_the_field(
    fmt: str, payload: Any, where: str
) -> None:
    with pytest.raises(MappingError) as failed:
        normalise(fmt, payload)
    assert failed.value.path == where
