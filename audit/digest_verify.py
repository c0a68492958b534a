"""Verifying the digests: their chain and signatures, and the heads they list.

What the digests add to the hash chains (audit.verify): a stream rewritten with fresh
hashes no longer matches the head a digest signed; a stream deleted whole is still named
by a digest; a deleted or forged digest breaks the digests' own chain or signature; and
a newest digest that is too old means newer ones were deleted, or nobody makes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby, pairwise
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit import merkle
from audit.digests import digest_document, document_bytes
from audit.hashing import ZERO_HASH, format_timestamp
from audit.models import AuditDigest, AuditDigestHead, AuditEvent, AuditStreamHead, head_leaf
from audit.signing import signature_holds, trusted_public_keys

# The name problems with the digests themselves are reported under, as if a stream.
DIGESTS = "<digests>"
HEADS_PER_CHUNK = 5000


class Listed(NamedTuple):
    """A stream head as one digest lists it."""

    seq: int
    hash: str
    digest: int


@dataclass(frozen=True)
class DigestProblem:
    seq: int  # the digest's number
    id: int | None  # its row, None when it is missing
    reason: str


@dataclass(frozen=True)
class DigestChain:
    """The outcome of checking the digests' chain."""

    checked: int
    newest: AuditDigest | None
    problem: DigestProblem | None


def verify_digest_chain() -> DigestChain:
    """Check every digest in order: numbering, link, hash, signature and Merkle root."""
    keys = trusted_public_keys()
    heads = (
        AuditDigestHead.objects.order_by("digest_seq", "position")
        .values_list("digest_seq", "position", "stream", "seq", "hash")
        .iterator(chunk_size=HEADS_PER_CHUNK)
    )
    listed = groupby(heads, key=lambda row: row[0])
    pending = next(listed, None)
    previous: AuditDigest | None = None
    checked = 0
    for digest in AuditDigest.objects.order_by("seq").iterator(chunk_size=500):
        rows: list[tuple[int, int, str, int, str]] = []
        # Heads of digests numbered below this one belong to no digest: they were left
        # behind by a deleted digest, which the numbering check below reports.
        while pending is not None and pending[0] <= digest.seq:
            if pending[0] == digest.seq:
                rows = list(pending[1])
            pending = next(listed, None)
        checked += 1
        reason = _digest_fault(digest, previous, rows, keys)
        if reason is not None:
            return DigestChain(checked, digest, DigestProblem(digest.seq, digest.pk, reason))
        previous = digest
    return DigestChain(checked, previous, None)


def _digest_fault(digest: AuditDigest, previous: AuditDigest | None,
                  rows: list[tuple[int, int, str, int, str]],
                  keys: dict[str, Ed25519PublicKey]) -> str | None:  # fmt: skip
    expected_seq = previous.seq + 1 if previous is not None else 1
    if digest.seq != expected_seq:
        return (f"digest #{expected_seq} is missing: the digests go from "
                f"#{expected_seq - 1} to #{digest.seq} (a digest was deleted)")  # fmt: skip
    expected_previous = previous.hash if previous is not None else ZERO_HASH
    if digest.previous_hash != expected_previous:
        return "its previous_hash is not the hash of the digest before it (the chain is broken)"
    data = document_bytes(digest_document(digest))
    if hashlib.sha256(data).hexdigest() != digest.hash:
        return "its hash does not match its contents (the digest was altered)"
    key = keys.get(digest.key_id)
    if key is None:
        return f"it is signed by key {digest.key_id}, which is not a trusted key here"
    if not signature_holds(key, data, digest.signature):
        return "its signature does not verify (the digest was forged or altered)"
    if len(rows) != digest.head_count or [r[1] for r in rows] != list(range(len(rows))):
        return (f"it lists {digest.head_count} stream heads but {len(rows)} are stored "
                "(heads of the digest were deleted or added)")  # fmt: skip
    streams = [r[2] for r in rows]
    if any(a >= b for a, b in pairwise(streams)):
        return "its stream heads are not in stream order (they were reordered)"
    leaves = [merkle.leaf_hash(head_leaf(s, q, h)) for _, _, s, q, h in rows]
    if merkle.root(leaves).hex() != digest.heads_root:
        return "its stream heads do not match the root it signed (a listed head was altered)"
    return None


def listings(streams: Iterable[str]) -> dict[str, list[Listed]]:
    """Every head the digests list for these streams, oldest digest first."""
    found: dict[str, list[Listed]] = {}
    rows = (
        AuditDigestHead.objects.filter(stream__in=list(streams))
        .order_by("stream", "digest_seq")
        .values_list("stream", "seq", "hash", "digest_seq")
    )
    for stream, seq, digest_hash, digest_seq in rows:
        found.setdefault(stream, []).append(Listed(seq, digest_hash, digest_seq))
    return found


def stream_listed_but_gone(streams: list[str] | None = None) -> AuditDigestHead | None:
    """The first head a digest lists whose stream has no head row any more."""
    gone = AuditDigestHead.objects.filter(
        ~Exists(AuditStreamHead.objects.filter(stream=OuterRef("stream")))
    )
    if streams is not None:
        gone = gone.filter(stream__in=streams)
    return gone.order_by("stream", "digest_seq").first()


def staleness(newest: AuditDigest | None, now: datetime | None = None) -> str | None:
    """Why the newest digest is too old to trust that none came after it, if it is.

    Digests are made every BULWARK_AUDIT_DIGEST_SECONDS, with or without new events; one
    missing for three intervals means later digests were deleted or none are being made.
    """
    interval = settings.BULWARK_AUDIT_DIGEST_SECONDS
    if interval <= 0:
        return None
    now = now or timezone.now()
    limit = now - timedelta(seconds=3 * interval)
    if newest is not None:
        if newest.created_at >= limit:
            return None
        return (f"the newest digest, #{newest.seq}, was made at {format_timestamp(newest.created_at)}; "
                f"one is made every {interval} s, so newer digests were deleted or the scheduler "
                "is not running")  # fmt: skip
    oldest = AuditEvent.objects.order_by("id").values_list("created_at", flat=True).first()
    if oldest is None or oldest >= limit:
        return None
    return (f"there are events since {format_timestamp(oldest)} but no digest: digests were "
            "deleted or the scheduler is not running")  # fmt: skip
