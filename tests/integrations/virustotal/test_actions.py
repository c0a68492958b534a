"""VirusTotal reports against the lab's simulator."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.virustotal import actions
from integrations.virustotal.simulator import LAB_API_KEY, MALICIOUS_SHA256
from tests.integrations.conftest import lab_connection, make_ctx

pytestmark = pytest.mark.django_db


def ctx_for(lab: Any, key: str = LAB_API_KEY) -> Any:
    return make_ctx(lab_connection(lab, "virustotal", {"api_key": key}))


def test_a_file_report_sends_the_key_header_and_returns_the_verdicts(lab: Any) -> None:
    output = actions.file_report(ctx_for(lab), hash=MALICIOUS_SHA256.upper())
    assert output["found"] is True
    assert (output["type"], output["malicious"], output["meaningful_name"]) == (
        "file",
        42,
        "invoice.exe",
    )
    assert output["last_analysis_stats"]["malicious"] == 42
    (call,) = lab["virustotal"].requests("GET")
    assert call.path == f"/api/v3/files/{MALICIOUS_SHA256}"
    assert call.headers["x-apikey"] == LAB_API_KEY


def test_an_unknown_hash_is_an_answer_not_a_failure(lab: Any) -> None:
    assert actions.file_report(ctx_for(lab), hash="0" * 64) == {"found": False, "id": "0" * 64}


def test_ip_and_domain_reports_carry_their_own_fields(lab: Any) -> None:
    ip = actions.ip_report(ctx_for(lab), ip="198.51.100.7")
    assert (ip["type"], ip["as_owner"], ip["malicious"]) == ("ip_address", "Example Hosting", 9)
    domain = actions.domain_report(ctx_for(lab), domain="Login-Micros0ft.example.")
    assert (domain["type"], domain["registrar"]) == ("domain", "NameCheap")
    assert lab["virustotal"].requests("GET")[-1].path == "/api/v3/domains/login-micros0ft.example"


def test_a_quota_error_waits_for_the_next_minute(lab: Any) -> None:
    lab["virustotal"].rate_limited(1)
    with pytest.raises(TransientError) as failed:
        actions.file_report(ctx_for(lab), hash=MALICIOUS_SHA256)
    assert (failed.value.kind, failed.value.retry_after) == ("rate_limited", 60.0)


def test_a_wrong_key_fails_permanently_without_showing_it(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.file_report(ctx_for(lab, "bad-key-123456"), hash=MALICIOUS_SHA256)
    assert "401" in failed.value.message
    assert "bad-key-123456" not in failed.value.message


@pytest.mark.parametrize(("call", "value"), [("file_report", "xyz"), ("ip_report", "10.0.0.300"),
                                             ("domain_report", "not a domain")])  # fmt: skip
def test_a_malformed_indicator_is_refused_before_asking(lab: Any, call: str, value: str) -> None:
    name = {"file_report": "hash", "ip_report": "ip", "domain_report": "domain"}[call]
    with pytest.raises(PermanentError) as failed:
        getattr(actions, call)(ctx_for(lab), **{name: value})
    assert failed.value.kind == "validation"
    assert lab["virustotal"].requests() == []


def test_a_transient_vendor_error_is_retryable(lab: Any) -> None:
    lab["virustotal"].inject(503)
    with pytest.raises(TransientError):
        actions.domain_report(ctx_for(lab), domain="virustotal.com")


def test_the_hash_can_be_given_as_sha256_as_the_spec_example_does(lab: Any) -> None:
    assert actions.file_report(ctx_for(lab), sha256=MALICIOUS_SHA256)["malicious"] == 42
