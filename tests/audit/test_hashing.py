"""Canonical JSON: stable across backends, independent of key order and spacing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from audit.hashing import ZERO_HASH, canonical_json, chain_hash, format_timestamp


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": [1, {"d": None, "c": True}], "a": "x"}) == (
        '{"a":"x","b":[1,{"c":true,"d":null}]}'
    )


def test_canonical_json_keeps_non_ascii_text_as_utf8() -> None:
    assert canonical_json({"host": "pc-ÿ-日本"}) == '{"host":"pc-ÿ-日本"}'


def test_integral_floats_are_written_as_integers_as_jsonb_returns_them() -> None:
    assert canonical_json([1.0, 1e16, -0.0, 0.5, 3]) == "[1,10000000000000000,0,0.5,3]"


def test_keys_are_ordered_by_utf16_code_units_as_rfc_8785_says() -> None:
    # U+1F600 is a surrogate pair (0xD83D...) in UTF-16, so it sorts before U+FB01.
    assert canonical_json({"\ufb01": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb01":1}'


def test_not_a_number_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})


def test_chain_hash_is_sha256_of_the_canonical_utf8_text() -> None:
    document = {"seq": 1, "prev_hash": ZERO_HASH, "payload": {"é": 2}}
    text = '{"payload":{"é":2},"prev_hash":"' + ZERO_HASH + '","seq":1}'
    assert chain_hash(document) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_timestamps_are_utc_with_microseconds() -> None:
    moment = datetime(2025, 3, 1, 10, 0, 0, 7, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2025-03-01T08:00:00.000007Z"
    assert format_timestamp(moment.astimezone(UTC)) == "2025-03-01T08:00:00.000007Z"


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2025, 3, 1))
