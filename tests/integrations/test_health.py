"""Per-connection circuit breakers and rate limits, shared through the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from integrations.connections import create_connection
from integrations.context import PollAgain
from integrations.crowdstrike import actions
from integrations.crowdstrike.simulator import LAB_CLIENT_ID, LAB_CLIENT_SECRET
from integrations.errors import TransientError
from integrations.models import Connection
from tests.conftest import client_for
from tests.integrations.conftest import make_ctx

pytestmark = pytest.mark.django_db
HOST = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
LOOKUP = "/devices/entities/devices/v2"


@pytest.fixture
def falcon_connection(lab: Any, encryption_keys: list[str]) -> Connection:
    return create_connection(
        integration="crowdstrike", name="falcon", base_url=lab.base_url("crowdstrike"),
        credentials={"client_id": LAB_CLIENT_ID, "client_secret": LAB_CLIENT_SECRET},
        allow_private_network=True, actor="user:alice",
        circuit_failures=3, circuit_cooldown_seconds=10,
    )  # fmt: skip


def get_host(connection: Connection) -> Any:
    connection.refresh_from_db()
    return actions.get_host(make_ctx(connection.to_info()), device_id=HOST)


def open_circuit(lab: Any, connection: Connection, *, failures: int = 3) -> None:
    """Three 503s in a row: the circuit (circuit_failures=3) opens."""
    lab["crowdstrike"].inject(503, times=failures, path=LOOKUP)
    for _ in range(failures):
        with pytest.raises(TransientError):
            get_host(connection)


def health(user: Any) -> dict[str, Any]:
    return client_for(user).get("/api/v1/connections/falcon/").json()["health"]


def test_the_circuit_opens_after_consecutive_failures_and_refuses_without_calling(
    lab: Any, falcon_connection: Connection, dave: Any
) -> None:
    lab["crowdstrike"].inject(503, times=3, path=LOOKUP)
    for _ in range(3):
        with pytest.raises(TransientError) as failed:
            get_host(falcon_connection)
        assert failed.value.kind == "http_status"
    sent = len(lab["crowdstrike"].requests("GET", LOOKUP))
    with pytest.raises(TransientError) as refused:
        get_host(falcon_connection)
    assert refused.value.kind == "circuit_open"
    assert refused.value.retry_after is not None
    assert 9 <= refused.value.retry_after <= 10
    assert len(lab["crowdstrike"].requests("GET", LOOKUP)) == sent  # nothing went out
    shown = health(dave)
    assert shown["circuit"] == "open"
    assert shown["consecutive_failures"] == 3
    assert shown["times_opened"] == 1
    assert shown["requests_refused"] == 1
    assert "503" in shown["last_error"]
    metrics = client_for(dave).get("/metrics").content.decode()
    assert 'bulwark_connection_circuit_state{connection="falcon",state="open"} 1.0' in metrics
    assert 'bulwark_connection_refused_total{connection="falcon"} 1.0' in metrics


def test_after_the_cool_down_one_probe_closes_the_circuit_again(
    lab: Any, falcon_connection: Connection, dave: Any, time_machine: Any
) -> None:
    open_circuit(lab, falcon_connection)
    time_machine.move_to(timezone.now() + timedelta(seconds=11))
    assert get_host(falcon_connection)["hostname"] == "WS-FIN-042"
    shown = health(dave)
    assert shown["circuit"] == "closed"
    assert shown["consecutive_failures"] == 0
    assert shown["last_success_at"] is not None


def test_a_failed_probe_opens_the_circuit_again(
    lab: Any, falcon_connection: Connection, dave: Any, time_machine: Any
) -> None:
    lab["crowdstrike"].inject(503, times=4, path=LOOKUP)
    for _ in range(3):
        with pytest.raises(TransientError):
            get_host(falcon_connection)
    time_machine.move_to(timezone.now() + timedelta(seconds=11))
    with pytest.raises(TransientError) as probe:  # the probe is let through, and fails
        get_host(falcon_connection)
    assert probe.value.kind == "http_status"
    shown = health(dave)
    assert shown["circuit"] == "open"
    assert shown["times_opened"] == 2
    assert len(lab["crowdstrike"].requests("GET", LOOKUP)) == 4


def test_only_one_attempt_probes_while_the_circuit_is_half_open(
    lab: Any, falcon_connection: Connection, time_machine: Any
) -> None:
    from integrations import health as connection_health

    open_circuit(lab, falcon_connection)
    time_machine.move_to(timezone.now() + timedelta(seconds=11))
    info = falcon_connection.to_info()
    connection_health.admit(make_ctx(info), info)  # this attempt is the probe...
    with pytest.raises(TransientError) as second:  # ...so another one is refused meanwhile
        get_host(falcon_connection)
    assert second.value.kind == "circuit_open"
    assert falcon_connection.health.state == "half_open"


def test_a_success_in_between_resets_the_failure_count(
    lab: Any, falcon_connection: Connection
) -> None:
    lab["crowdstrike"].inject(503, times=2, path=LOOKUP)
    for _ in range(2):
        with pytest.raises(TransientError):
            get_host(falcon_connection)
    get_host(falcon_connection)  # a success in between resets the count
    lab["crowdstrike"].inject(503, times=2, path=LOOKUP)
    for _ in range(2):
        with pytest.raises(TransientError):
            get_host(falcon_connection)
    assert falcon_connection.health.state == "closed"


def test_client_errors_and_429s_do_not_count_toward_opening(
    lab: Any, falcon_connection: Connection
) -> None:
    from integrations.errors import PermanentError

    lab["crowdstrike"].inject(404, times=4, path=LOOKUP)
    for _ in range(4):
        with pytest.raises(PermanentError):
            get_host(falcon_connection)
    lab["crowdstrike"].rate_limited(5, times=4, path=LOOKUP)
    for _ in range(4):
        with pytest.raises(TransientError):
            get_host(falcon_connection)
    assert falcon_connection.health.state == "closed"
    assert falcon_connection.health.consecutive_failures == 0


def test_a_connection_over_its_rate_limit_defers_the_attempt_keeping_its_progress(
    lab: Any, falcon_connection: Connection, dave: Any
) -> None:
    Connection.objects.filter(pk=falcon_connection.pk).update(rate_limit_per_minute=60)
    falcon_connection.refresh_from_db()
    for _ in range(3):  # a burst of about three seconds' worth goes at once
        get_host(falcon_connection)
    ctx = make_ctx(falcon_connection.to_info())
    ctx.progress = {"session_id": "kept"}
    with pytest.raises(PollAgain) as deferred:
        actions.get_host(ctx, device_id=HOST)
    assert deferred.value.progress == {"session_id": "kept"}
    assert 1.0 <= deferred.value.after <= 5.0
    assert len(lab["crowdstrike"].requests("GET", LOOKUP)) == 3
    assert health(dave)["requests_deferred"] == 1


def test_a_refusal_before_any_request_neither_opens_nor_closes_the_circuit(
    lab: Any, falcon_connection: Connection
) -> None:
    from integrations import health as connection_health
    from integrations.errors import PermanentError

    open_circuit(lab, falcon_connection)
    info = falcon_connection.to_info()
    connection_health.record_failure(info, PermanentError("bad input", kind="validation"))
    falcon_connection.health.refresh_from_db()
    assert falcon_connection.health.state == "open"
