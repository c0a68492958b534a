"""The per-step statements are prepared on PostgreSQL, and only when asked to be."""

from __future__ import annotations

import pytest
from django.db import connection

from core.dispatch import InlineDispatcher
from core.runs import start_run
from tests.core.factories import definition, echo, published_version

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="prepared statements are a PostgreSQL matter"
    ),
]


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _run_a_chain(inline_dispatch: InlineDispatcher) -> None:
    version = published_version(definition(echo("a"), echo("b", "a"), echo("c", "b")))
    start_run(playbook=version.playbook, actor="user:bob")
    inline_dispatch.drain()


def test_running_steps_prepares_the_hot_statements_and_nothing_else(
    inline_dispatch: InlineDispatcher,
) -> None:
    connection.close()  # a fresh session: nothing prepared yet
    _run_a_chain(inline_dispatch)
    statements = _prepared_statements()
    assert any("FOR UPDATE OF r" in s for s in statements)  # the run lock
    assert any("jsonb_to_recordset" in s for s in statements)  # unit writes, audit appends
    assert not any('"core_run"' in s for s in statements)  # the ORM's queries stay unprepared


def test_preparing_can_be_turned_off_for_poolers(
    inline_dispatch: InlineDispatcher, settings: pytest.FixtureRequest
) -> None:
    settings.BULWARK_PREPARED_STATEMENTS = False  # type: ignore[attr-defined]
    connection.close()
    _run_a_chain(inline_dispatch)
    assert _prepared_statements() == []
