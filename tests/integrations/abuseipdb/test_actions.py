"""abuseipdb.check_ip against the lab's simulator."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.abuseipdb import actions
from integrations.abuseipdb.simulator import LAB_API_KEY
from integrations.errors import PermanentError, TransientError
from tests.integrations.conftest import lab_connection, make_ctx

pytestmark = pytest.mark.django_db


def ctx_for(lab: Any, key: str = LAB_API_KEY) -> Any:
    return make_ctx(lab_connection(lab, "abuseipdb", {"api_key": key}))


def test_check_ip_sends_the_key_and_query_and_returns_the_score(lab: Any) -> None:
    output = actions.check_ip(ctx_for(lab), ip="198.51.100.7", max_age_days=30)
    assert (output["abuseConfidenceScore"], output["totalReports"]) == (97, 412)
    (call,) = lab["abuseipdb"].requests("GET", "/api/v2/check")
    assert call.query == {"ipAddress": "198.51.100.7", "maxAgeInDays": "30"}
    assert call.headers["key"] == LAB_API_KEY
    assert call.headers["accept"] == "application/json"


def test_a_422_names_the_problem(lab: Any) -> None:
    lab["abuseipdb"].inject(
        422, {"errors": [{"detail": "The ip address must be valid.", "status": 422}]}
    )
    with pytest.raises(PermanentError) as failed:
        actions.check_ip(ctx_for(lab), ip="198.51.100.7")
    assert "must be valid" in failed.value.message


def test_a_spent_daily_quota_waits_as_told(lab: Any) -> None:
    lab["abuseipdb"].rate_limited(3600)
    with pytest.raises(TransientError) as failed:
        actions.check_ip(ctx_for(lab), ip="198.51.100.7")
    assert failed.value.retry_after == 3600


def test_a_wrong_key_fails_permanently(lab: Any) -> None:
    with pytest.raises(PermanentError) as failed:
        actions.check_ip(ctx_for(lab, "wrong-key-abc"), ip="198.51.100.7")
    assert "401" in failed.value.message


def test_an_invalid_address_is_refused_before_asking(lab: Any) -> None:
    with pytest.raises(PermanentError):
        actions.check_ip(ctx_for(lab), ip="not-an-ip")
    assert lab["abuseipdb"].requests() == []
