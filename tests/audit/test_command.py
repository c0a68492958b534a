"""manage.py audit_verify: exit 0 with a summary, or exit 1 naming the first broken event."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from audit.digests import make_digest
from audit.events import record_event
from audit.models import AuditEvent
from tests.audit.conftest import tamper


@pytest.fixture
def events(db: None) -> list[AuditEvent]:
    return [
        record_event(stream="run:7", kind="run.started", actor="user:bob", run_id=7),
        record_event(stream="run:7", kind="step.succeeded", actor="system", run_id=7),
        record_event(stream="system", kind="worker.started", actor="worker:h:1"),
    ]


def test_an_intact_trail_prints_a_summary_and_exits_zero(
    events: list[AuditEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    make_digest()
    execute_from_command_line(["manage.py", "audit_verify"])  # would raise SystemExit if not 0
    assert capsys.readouterr().out == "audit: 3 events in 2 streams and 1 digests verify\n"


def test_a_broken_trail_names_the_first_bad_event_on_stderr_and_exits_one(
    events: list[AuditEvent], capsys: pytest.CaptureFixture[str]
) -> None:
    tamper("UPDATE {table} SET actor = 'user:mallory' WHERE id = %s", [events[1].pk])
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "audit_verify"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"stream run:7 at seq 2 (event id {events[1].pk})" in captured.err
    assert "hash does not match" in captured.err


def test_the_stream_option_limits_verification(events: list[AuditEvent]) -> None:
    tamper("UPDATE {table} SET actor = 'user:mallory' WHERE id = %s", [events[1].pk])
    out = StringIO()
    call_command("audit_verify", "--stream", "system", stdout=out)
    assert out.getvalue() == "audit: 1 events in 1 streams and 0 digests verify\n"
    with pytest.raises(CommandError, match="stream run:7 at seq 2") as error:
        call_command("audit_verify", "--stream", "system", "--stream", "run:7")
    assert error.value.returncode == 1
