"""Tombstones: what retention leaves where it pruned a stream's events.

A tombstone is signed with the digests' key over what it replaces (the stream, the
range of sequence numbers, the hash the first pruned event followed and the last pruned
event's hash), so the stream's chain still verifies from the tombstone on, and deleting
events without one, or forging one, shows at verification (audit.verify).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.digests import document_bytes
from audit.hashing import ZERO_HASH, format_timestamp
from audit.models import AuditTombstone
from audit.signing import current_public_key, key_id, sign, signature_holds

FORMAT = "bulwark-audit-tombstone/1"


def tombstone_document(tombstone: AuditTombstone) -> dict[str, Any]:
    """The document a tombstone's signature is over."""
    return {
        "format": FORMAT,
        "stream": tombstone.stream,
        "from_seq": tombstone.from_seq,
        "through_seq": tombstone.through_seq,
        "prev_hash": tombstone.prev_hash,
        "hash": tombstone.hash,
        "event_count": tombstone.event_count,
        "first_at": format_timestamp(tombstone.first_at),
        "last_at": format_timestamp(tombstone.last_at),
        "pruned_at": format_timestamp(tombstone.pruned_at),
        "reason": tombstone.reason,
        "key_id": tombstone.key_id,
    }


def sign_tombstone(tombstone: AuditTombstone) -> None:
    """Set the tombstone's key id and signature (before it is saved)."""
    tombstone.key_id = key_id(current_public_key())
    tombstone.signature = sign(document_bytes(tombstone_document(tombstone)))


def tombstones_of(streams: Iterable[str]) -> dict[str, list[AuditTombstone]]:
    """Each stream's tombstones, oldest range first."""
    found: dict[str, list[AuditTombstone]] = {}
    for tombstone in AuditTombstone.objects.filter(stream__in=list(streams)).order_by(
        "stream", "from_seq"
    ):
        found.setdefault(tombstone.stream, []).append(tombstone)
    return found


def tombstones_fault(
    tombstones: Sequence[AuditTombstone], keys: dict[str, Ed25519PublicKey]
) -> tuple[AuditTombstone, str] | None:
    """The first tombstone of one stream's (oldest first) that does not hold, and why."""
    signed = [(tombstone_document(t), t.signature) for t in tombstones]
    fault = signed_fault(signed, keys)
    return None if fault is None else (tombstones[fault[0]], fault[1])


def signed_fault(
    signed: Sequence[tuple[dict[str, Any], str]], keys: dict[str, Ed25519PublicKey]
) -> tuple[int, str] | None:
    """Which of one stream's signed tombstone documents (oldest first) does not hold, and why.

    Each must be signed by a trusted key, and together they must cover the stream from
    its first event with no gap or overlap, each following the hash the one before ended on.
    """
    expected_from, expected_prev = 1, ZERO_HASH
    for n, (document, signature) in enumerate(signed):
        key = keys.get(str(document.get("key_id")))
        if key is None:
            return n, f"it is signed by key {document.get('key_id')}, which is not trusted here"
        if document.get("format") != FORMAT:
            return n, f"its format is {document.get('format')!r}, not {FORMAT}"
        if not signature_holds(key, document_bytes(document), signature):
            return n, "its signature does not verify (the tombstone was forged or altered)"
        start, through = document["from_seq"], document["through_seq"]
        if start != expected_from:
            return n, (f"it starts at seq {start}, but the stream's pruned events end at seq "
                       f"{expected_from - 1} (a tombstone was deleted)")  # fmt: skip
        if document["prev_hash"] != expected_prev:
            return n, "its prev_hash is not the hash the tombstone before it ended on"
        if through < start:
            return n, "its range is empty"
        expected_from, expected_prev = through + 1, document["hash"]
    return None
