"""Evidence bundles: a stream's events with the signed digests that cover them, in a zip
an auditor can verify offline with only the public key (audit.bundle_verify).

A bundle holds `events.jsonl` (the stream, every hashed field), `digests.json` (each
digest that lists the stream: its signed document, signature and the Merkle path from the
stream's head to the digest's root), `tombstones.json` (the signed tombstones of what
retention pruned of the stream, which its events then follow), `public_key.pem`, whatever files the caller adds (a
run's definition, artifact hashes, a readable report), and `manifest.json`, naming every
file with its SHA-256 and signed (`manifest.sig`), so no file can be changed, added or
dropped unnoticed.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping
from typing import IO, Any, Final

from django.utils import timezone

from audit import merkle
from audit.digests import digest_document, make_digest
from audit.export import events_by_id, exported
from audit.hashing import canonical_json, format_timestamp
from audit.models import AuditDigest, AuditDigestHead, AuditEvent, AuditTombstone
from audit.signing import current_public_key, key_id, public_pem, sign
from audit.tombstones import tombstone_document

FORMAT: Final = "bulwark-evidence-bundle/1"
EVENTS: Final = "events.jsonl"
DIGESTS: Final = "digests.json"
TOMBSTONES: Final = "tombstones.json"
PUBLIC_KEY: Final = "public_key.pem"
MANIFEST: Final = "manifest.json"
SIGNATURE: Final = "manifest.sig"


def digests_covering(stream: str) -> list[dict[str, Any]]:
    """Every digest that lists `stream`, with the inclusion proof of the head it lists."""
    covering = []
    listed = AuditDigestHead.objects.filter(stream=stream).order_by("digest_seq")
    for entry in listed:
        digest = AuditDigest.objects.get(seq=entry.digest_seq)
        leaves = [merkle.leaf_hash(row.leaf()) for row in
                  AuditDigestHead.objects.filter(digest_seq=digest.seq).order_by("position")]  # fmt: skip
        path = merkle.inclusion_path(leaves, entry.position)
        covering.append({
            "document": digest_document(digest), "hash": digest.hash, "signature": digest.signature,
            "head": {"stream": stream, "seq": entry.seq, "hash": entry.hash,
                     "position": entry.position, "path": [node.hex() for node in path]},
        })  # fmt: skip
    return covering


def tombstones_signed(stream: str) -> list[dict[str, Any]]:
    """The stream's tombstones, oldest range first, as signed documents."""
    return [
        {"document": tombstone_document(tombstone), "signature": tombstone.signature}
        for tombstone in AuditTombstone.objects.filter(stream=stream).order_by("from_seq")
    ]


def write_bundle(target: IO[bytes], *, stream: str, subject: Mapping[str, Any],
                 files: Mapping[str, bytes], created_by: str) -> dict[str, Any]:  # fmt: skip
    """Write the bundle of `stream` to `target` (a binary file); returns its manifest.

    A digest is made first, so every event recorded so far is covered by a signature.
    `subject` says what the bundle is of (e.g. the run), `files` are added as they are.
    """
    for name in files:
        if name in (EVENTS, DIGESTS, TOMBSTONES, PUBLIC_KEY, MANIFEST, SIGNATURE) or "/" in name:
            raise ValueError(f"a bundle cannot take a file named {name!r}")
    make_digest()
    public = current_public_key()
    hashes: dict[str, str] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open(EVENTS, "w") as out:
            digest = hashlib.sha256()
            for event in events_by_id(AuditEvent.objects.filter(stream=stream)):
                line = (canonical_json(exported(event)) + "\n").encode()
                digest.update(line)
                out.write(line)
            hashes[EVENTS] = digest.hexdigest()
        contents = {
            DIGESTS: canonical_json(digests_covering(stream)).encode(),
            TOMBSTONES: canonical_json(tombstones_signed(stream)).encode(),
            PUBLIC_KEY: public_pem(public).encode(),
            **files,
        }
        for name, data in contents.items():
            bundle.writestr(name, data)
            hashes[name] = hashlib.sha256(data).hexdigest()
        manifest = {
            "format": FORMAT,
            "stream": stream,
            "subject": dict(subject),
            "created_at": format_timestamp(timezone.now()),
            "created_by": created_by,
            "key_id": key_id(public),
            "files": dict(sorted(hashes.items())),
        }
        data = canonical_json(manifest).encode()
        bundle.writestr(MANIFEST, data)
        bundle.writestr(SIGNATURE, sign(data))
    return manifest
