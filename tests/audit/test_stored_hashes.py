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
from audit.hashing import _general_event_hash, canonical_json, chain_hash, event_hash
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


# Without floats, nearly every payload takes the orjson path: integers up to 64 bits and
# past them, every character of the BMP (control characters and escapes included).
WHOLE_LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**66), 2**66)
    | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
)  # fmt: skip
WHOLE_PAYLOADS = st.dictionaries(
    KEYS, st.recursive(WHOLE_LEAVES, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8),
    max_size=5,
)  # fmt: skip
FIELDS = {"stream": "run:1", "seq": 3, "created_at": "2026-01-02T03:04:05.000006Z",
          "actor": "user:é", "kind": "step.succeeded", "run_id": 7, "step_id": "s",
          "playbook": "p", "prev_hash": "ab" * 32}  # fmt: skip


@given(WHOLE_PAYLOADS)
def test_the_fast_path_hashes_as_the_general_path_does(payload: dict[str, Any]) -> None:
    clean = clean_payload(payload)
    expected = chain_hash({**FIELDS, "payload": clean})
    for text in (canonical_json(clean), json.dumps(clean), json.dumps(clean, indent=1)):
        assert event_hash(**FIELDS, payload_text=text) == expected
        assert _general_event_hash(**FIELDS, payload_text=text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 18446744073709551616}',  # beyond 64 bits: orjson would read a float
        '{"n": -9223372036854775809}',
        '{"n": 9223372036854775807, "m": -9223372036854775808}',
        '{"n": 1e16, "m": 2.50, "o": -0.0, "p": 1E2}',  # floats: integral ones as integers
        '{"version": "1.5", "id": "1234567890123456789012"}',  # merely look like numbers
        '{"x": "\\ud83d\\ude00", "\\ud83d\\ude00": 1, "\\ufb01": 2}',  # beyond the BMP
        '{"a": "\\u0000\\u001f\\u007f\\u2028", "b": "\\"\\\\/"}',
    ],
)
def test_payloads_the_fast_path_leaves_alone_hash_as_the_general_path_does(text: str) -> None:
    assert event_hash(**FIELDS, payload_text=text) == _general_event_hash(
        **FIELDS, payload_text=text
    )


@pytest.mark.parametrize(
    ("field", "text"),
    [("actor", "{}"), ("payload_text", '{"x": "\\ud800"}'), ("payload_text", '{"a": NaN}')],
)
def test_what_no_event_can_hold_is_refused_on_either_path(field: str, text: str) -> None:
    # A lone surrogate is not UTF-8, and NaN is not JSON: neither could have been hashed
    # when written, so stored text holding one was altered (verification says so).
    fields = {**FIELDS, "payload_text": "{}"}
    fields[field] = "user:\ud800" if field == "actor" else text
    with pytest.raises(ValueError, match=r"surrogate|JSON|Out of range"):
        event_hash(**fields)
    with pytest.raises(ValueError, match=r"surrogate|JSON|Out of range"):
        _general_event_hash(**fields)


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
