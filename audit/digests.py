"""Signed digests over the heads of the audit streams (SPEC §8, in CloudTrail's manner).

Every few minutes, and on demand, a digest lists the head (stream, seq, hash) of every
stream that moved since the previous digest, signs the Merkle root over them and the
previous digest's hash with Ed25519, and so chains the digests. A chain hash alone can
be recomputed by whoever can write the database; a signed digest cannot, so rewriting a
stream, deleting one whole, or deleting a digest shows at verification (audit.digest_verify).

Which heads moved: each head records when it last moved (`changed`), and each digest a
watermark below which every change is already visible to it. On PostgreSQL those are
transaction ids and the snapshot's xmin, so a transaction that commits late, after a
digest was taken, still has an id at or above that digest's watermark and is listed by
the next one. On SQLite, whose writers take turns, they are event ids.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import merkle
from audit.hashing import ZERO_HASH, canonical_json, format_timestamp
from audit.models import AuditDigest, AuditDigestHead, AuditEvent, AuditStreamHead, head_leaf
from audit.signing import current_public_key, key_id, sign

log = logging.getLogger("bulwark.audit")

FORMAT = "bulwark-audit-digest/1"
HEADS_PER_INSERT = 5000


def digest_document(digest: AuditDigest) -> dict[str, Any]:
    """The document a digest's signature and hash are over."""
    return {
        "format": FORMAT,
        "seq": digest.seq,
        "created_at": format_timestamp(digest.created_at),
        "watermark": digest.watermark,
        "head_count": digest.head_count,
        "heads_root": digest.heads_root,
        "previous_hash": digest.previous_hash,
        "key_id": digest.key_id,
    }


def document_bytes(document: dict[str, Any]) -> bytes:
    return canonical_json(document).encode()


def make_digest() -> AuditDigest:
    """Sign a digest of every head that moved since the previous digest; returns it.

    Two digests made at once (the scheduler's and one asked for) cannot both take the
    next number; the one that loses builds again on top of the other.
    """
    for _ in range(3):
        try:
            with transaction.atomic():
                return _make_digest()
        except IntegrityError:
            log.info("audit: another digest took the same number; building on top of it")
    raise RuntimeError("audit: could not make a digest: three attempts collided with others")


def _make_digest() -> AuditDigest:
    previous = AuditDigest.objects.order_by("-seq").first()
    # The watermark first, then the heads: every change the heads query misses then has
    # an id at or above the watermark, for the next digest to find.
    watermark = _watermark()
    heads = AuditStreamHead.objects.filter(seq__gt=0).order_by("stream")
    if previous is not None:
        heads = heads.filter(changed__gte=previous.watermark)
    listed = list(heads.values_list("stream", "seq", "hash"))
    leaves = [merkle.leaf_hash(head_leaf(*head)) for head in listed]
    public = current_public_key()
    digest = AuditDigest(
        seq=(previous.seq + 1) if previous is not None else 1,
        created_at=timezone.now(),
        watermark=watermark,
        head_count=len(listed),
        heads_root=merkle.root(leaves).hex(),
        previous_hash=previous.hash if previous is not None else ZERO_HASH,
        key_id=key_id(public),
    )
    data = document_bytes(digest_document(digest))
    digest.hash = hashlib.sha256(data).hexdigest()
    digest.signature = sign(data)
    digest.save()
    for start in range(0, len(listed), HEADS_PER_INSERT):
        AuditDigestHead.objects.bulk_create(
            AuditDigestHead(digest_seq=digest.seq, position=start + n, stream=s, seq=q, hash=h)
            for n, (s, q, h) in enumerate(listed[start : start + HEADS_PER_INSERT])
        )
    return digest


def _watermark() -> int:
    """An id below which every head change is committed and visible from here on."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            return int(cursor.fetchone()[0])
        # SQLite: the next event id; writers take turns, so none is in flight.
        last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
        return (last or 0) + 1


def digest_if_due(now: datetime | None = None) -> AuditDigest | None:
    """Make a digest when the newest is older than BULWARK_AUDIT_DIGEST_SECONDS."""
    interval = settings.BULWARK_AUDIT_DIGEST_SECONDS
    if interval <= 0:
        return None
    now = now or timezone.now()
    newest = AuditDigest.objects.order_by("-seq").values_list("created_at", flat=True).first()
    if newest is not None and now - newest < timedelta(seconds=interval):
        return None
    return make_digest()
