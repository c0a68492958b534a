"""Whatever a payload holds, the hash verification computes from the stored JSON text is
the hash computed when the event was written: a mismatch would be a false alarm of
tampering. Floats, integral floats, -0.0, huge and tiny numbers, keys beyond the BMP,
escapes and nesting, through the real database and back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.events import clean_payload, record_event
from audit.hashing import canonical_json, chain_hash, event_hash
from audit.verify import verify_chains

KEYS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1.0, 1e16, 1.5e300, 1e-7, 2.5, -3.0])
    | st.text(max_size=8)
)  # fmt: skip
PAYLOADS = st.dictionaries(
    KEYS, st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8),
    max_size=5,
)  # fmt: skip


OPTIONAL_TEXT = st.none() | st.text(max_size=6)


@given(PAYLOADS, st.text(min_size=1, max_size=6), OPTIONAL_TEXT, OPTIONAL_TEXT,
       st.none() | st.integers(0, 2**62))  # fmt: skip
def test_the_text_path_hashes_as_the_canonical_form_does(
    payload: dict[str, Any], actor: str, step_id: str | None, playbook: str | None,
    run_id: int | None,
) -> None:  # fmt: skip
    clean = clean_payload(payload)
    fields = {"stream": "run:1", "seq": 3, "created_at": "2026-01-02T03:04:05.000006Z",
              "actor": actor, "kind": "step.succeeded", "run_id": run_id, "step_id": step_id,
              "playbook": playbook, "prev_hash": "ab" * 32}  # fmt: skip
    expected = chain_hash({**fields, "payload": clean})
    assert event_hash(**fields, payload_text=canonical_json(clean)) == expected
    # As PostgreSQL's jsonb and Django's SQLite column write it, too.
    assert event_hash(**fields, payload_text=json.dumps(clean)) == expected


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(PAYLOADS)
def test_events_read_back_from_the_database_verify(payload: dict[str, Any]) -> None:
    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            record_event(stream="run:1", kind="k", actor="system", payload=payload)
            result = verify_chains(["run:1"])
            raise Undo  # each example starts from an empty trail
    except Undo:
        pass
    assert result.ok, (payload, result.first_problem)
