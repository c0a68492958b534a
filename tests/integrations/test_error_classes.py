"""Every vendor action against its simulator answering each HTTP error class: what says
"this cannot work" (401, 403, 404) fails permanently, what says "later" (429, 5xx) is
transient, and the message names the status. Vendor-specific answers (Slack's ok:false,
Defender's ActiveRequestAlreadyExists, AWX's ignored_fields …) are tested per vendor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from integrations.context import ActionContext, ConnectionInfo
from integrations.errors import PermanentError, TransientError
from integrations.lab.connections import lab_specs
from integrations.registry import get_action, invoke
from tests.integrations.conftest import make_ctx

pytestmark = pytest.mark.django_db

MACHINE = "1e5c0d0f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
CALLS: dict[str, dict[str, Any]] = {
    "crowdstrike.contain_host": {"device_id": "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"},
    "crowdstrike.lift_containment": {"device_id": "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"},
    "crowdstrike.get_host": {"device_id": "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"},
    "crowdstrike.rtr_get_file": {"device_id": "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90", "file_path": "C:\\x.exe"},
    "defender.isolate_machine": {"machine_id": MACHINE, "comment": "c"},
    "defender.unisolate_machine": {"machine_id": MACHINE, "comment": "c"},
    "defender.collect_investigation_package": {"machine_id": MACHINE, "comment": "c"},
    "sentinelone.disconnect_agent": {"agent_id": "1600000000000000001"},
    "sentinelone.connect_agent": {"agent_id": "1600000000000000001"},
    "slack.post_message": {"channel": "C0SOC", "text": "t"},
    "teams.post_card": {"title": "t", "text": "t"},
    "pagerduty.trigger": {"summary": "s", "source": "h"},
    "pagerduty.resolve": {"dedup_key": "k"},
    "jira.create_issue": {"project": "SEC", "summary": "s"},
    "jira.add_comment": {"issue": "SEC-1", "text": "t"},
    "servicenow.create_incident": {"short_description": "s"},
    "awx.launch_job": {"job_template": 42},
    "virustotal.file_report": {"hash": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"},
    "virustotal.ip_report": {"ip": "198.51.100.7"},
    "virustotal.domain_report": {"domain": "virustotal.com"},
    "abuseipdb.check_ip": {"ip": "198.51.100.7"},
}  # fmt: skip
PERMANENT, TRANSIENT = (401, 403, 404), (429, 500, 502, 503)


def test_the_table_covers_every_http_vendor_action() -> None:
    from integrations.registry import load_actions

    vendors = {
        n
        for n, spec in load_actions().items()
        if spec.connection_integration not in (None, "http", "email")
    }
    assert vendors == set(CALLS)


def ctx_for(lab: Any, vendor: str) -> ActionContext:
    (spec,) = [s for s in lab_specs(lab.url, lab.smtp_settings()) if s[0] == vendor]
    _, base_url, credentials, options = spec
    return make_ctx(ConnectionInfo(name=f"lab-{vendor}", integration=vendor, base_url=base_url,
                                   credentials=credentials, allow_private_network=True, options=options))  # fmt: skip


def call(lab: Any, name: str) -> Callable[[], Any]:
    spec = get_action(name)
    assert spec is not None
    return lambda: invoke(spec, ctx_for(lab, name.split(".")[0]), CALLS[name])


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("status", PERMANENT + TRANSIENT)
def test_each_error_class_is_classified(lab: Any, name: str, status: int) -> None:
    vendor = name.split(".")[0]
    lab[vendor].inject(status, times=10)  # every request, token requests included
    if name.startswith("virustotal.") and status == 404:
        assert call(lab, name)()["found"] is False  # an unknown indicator is an answer
        return
    expected = PermanentError if status in PERMANENT else TransientError
    with pytest.raises(expected) as failed:
        call(lab, name)()
    assert str(status) in failed.value.message or (
        status == 429 and failed.value.kind == "rate_limited"  # VirusTotal's quota
    ), failed.value.message
