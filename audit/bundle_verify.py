"""Verifying an evidence bundle offline: no database, only the bundle and a public key.

The checks, in order, stopping at the first that fails: the manifest's signature; every
file against its SHA-256 in the manifest, and no file unlisted; the tombstones of what was
pruned (signatures, and their chain); the events' hash chain, from the last tombstone on;
each digest's hash and signature and the Merkle path from the stream's head to its root;
each head a digest signed against the event at that seq; and the last event covered by
a digest.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import merkle
from audit.bundles import DIGESTS, EVENTS, FORMAT, MANIFEST, PUBLIC_KEY, SIGNATURE, TOMBSTONES
from audit.digests import document_bytes
from audit.hashing import ZERO_HASH, chain_hash
from audit.models import head_leaf
from audit.signing import BadKey, key_id, public_key_from_text, signature_holds
from audit.tombstones import signed_fault


@dataclass(frozen=True)
class BundleResult:
    ok: bool
    stream: str
    events_checked: int
    digests_checked: int
    problem: str | None  # where and what, in words
    key_from_bundle: bool  # no key was given: only integrity is shown, not origin


class _Broken(Exception):
    pass


def verify_bundle(path: Path, public_key: Ed25519PublicKey | None = None) -> BundleResult:
    """Verify the bundle at `path` against `public_key` (without one, against the key the
    bundle carries: that shows it is intact, not who made it)."""
    stream, events, digests = "", 0, 0
    try:
        with zipfile.ZipFile(path) as bundle:
            names = set(bundle.namelist())
            for needed in (MANIFEST, SIGNATURE, EVENTS, DIGESTS, PUBLIC_KEY):
                if needed not in names:
                    raise _Broken(f"the bundle has no {needed}")
            manifest_bytes = bundle.read(MANIFEST)
            manifest = json.loads(manifest_bytes)
            stream = str(manifest.get("stream", ""))
            if manifest.get("format") != FORMAT:
                raise _Broken(f"{MANIFEST}: format {manifest.get('format')!r} is not {FORMAT}")
            key = public_key or _bundled_key(bundle)
            if manifest.get("key_id") != key_id(key):
                raise _Broken(f"{MANIFEST}: signed by key {manifest.get('key_id')}, not by the "
                              f"given key {key_id(key)}")  # fmt: skip
            if not signature_holds(key, manifest_bytes, bundle.read(SIGNATURE).decode().strip()):
                raise _Broken(f"{SIGNATURE}: the manifest's signature does not verify")
            _check_files(bundle, manifest, names)
            # Bundles made before retention existed have no tombstones file.
            pruned = _check_tombstones(
                json.loads(bundle.read(TOMBSTONES)) if TOMBSTONES in names else [], key, stream
            )
            chain = _check_events(bundle.read(EVENTS), stream, pruned)
            events = len(chain)
            digests = _check_digests(json.loads(bundle.read(DIGESTS)), chain, pruned, key, stream)
    except _Broken as broken:
        return BundleResult(False, stream, events, digests, str(broken), public_key is None)
    except (zipfile.BadZipFile, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        return BundleResult(False, stream, events, digests,
                            f"the bundle cannot be read: {type(exc).__name__}: {exc}",
                            public_key is None)  # fmt: skip
    return BundleResult(True, stream, events, digests, None, public_key is None)


def _bundled_key(bundle: zipfile.ZipFile) -> Ed25519PublicKey:
    try:
        return public_key_from_text(bundle.read(PUBLIC_KEY).decode(), PUBLIC_KEY)
    except BadKey as exc:
        raise _Broken(str(exc)) from None


def _check_files(bundle: zipfile.ZipFile, manifest: dict[str, Any], names: set[str]) -> None:
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise _Broken(f"{MANIFEST}: no list of files")
    unlisted = names - set(listed) - {MANIFEST, SIGNATURE}
    if unlisted:
        raise _Broken(f"{sorted(unlisted)[0]}: in the bundle but not in its manifest (added)")
    for name, expected in sorted(listed.items()):
        if name not in names:
            raise _Broken(f"{name}: in the manifest but not in the bundle (removed)")
        digest = hashlib.sha256()
        with bundle.open(name) as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise _Broken(f"{name}: its SHA-256 is not the manifest's (the file was changed)")


@dataclass(frozen=True)
class _Pruned:
    """What the bundle's tombstones say was pruned: seqs up to `through`, ending on `hash`;
    `ends` is each tombstone's last seq and hash."""

    through: int
    hash: str
    ends: dict[int, str]


def _check_tombstones(signed: list[dict[str, Any]], key: Ed25519PublicKey, stream: str) -> _Pruned:
    documents = [(item["document"], item["signature"]) for item in signed]
    for n, (document, _) in enumerate(documents):
        if document.get("stream") != stream:
            raise _Broken(
                f"{TOMBSTONES}: tombstone {n + 1} is of stream {document.get('stream')!r}"
            )
    fault = signed_fault(documents, {key_id(key): key})
    if fault is not None:
        document = documents[fault[0]][0]
        raise _Broken(f"{TOMBSTONES}: the tombstone for {stream} seq {document.get('from_seq')}.."
                      f"{document.get('through_seq')}: {fault[1]}")  # fmt: skip
    if not documents:
        return _Pruned(0, ZERO_HASH, {})
    ends = {document["through_seq"]: document["hash"] for document, _ in documents}
    last = documents[-1][0]
    return _Pruned(last["through_seq"], last["hash"], ends)


def _check_events(data: bytes, stream: str, pruned: _Pruned) -> dict[int, str]:
    """The events' hashes by seq, once their chain (after what was pruned) verifies."""
    hashes: dict[int, str] = {}
    prev = pruned.hash
    for n, line in enumerate(data.decode().splitlines(), start=pruned.through + 1):
        record = json.loads(line)
        seq = record.get("seq")
        where = f"{EVENTS} line {n - pruned.through} ({stream} seq {seq})"
        if record.get("stream") != stream:
            raise _Broken(f"{where}: belongs to stream {record.get('stream')!r}")
        if seq != n:
            raise _Broken(f"{where}: expected seq {n} (an event is missing or out of order)")
        document = {k: v for k, v in record.items() if k not in ("id", "hash")}
        if chain_hash(document) != record.get("hash"):
            raise _Broken(f"{where}: its hash does not match its contents (the event was altered)")
        if record.get("prev_hash") != prev:
            raise _Broken(f"{where}: prev_hash is not the previous event's hash (chain broken)")
        prev = record["hash"]
        hashes[seq] = prev
    return hashes


def _check_digests(covering: list[dict[str, Any]], chain: dict[int, str], pruned: _Pruned,
                   key: Ed25519PublicKey, stream: str) -> int:  # fmt: skip
    checked, covered = 0, 0
    for item in covering:
        document, head = item["document"], item["head"]
        where = f"{DIGESTS}: digest #{document.get('seq')}"
        data = document_bytes(document)
        if hashlib.sha256(data).hexdigest() != item["hash"]:
            raise _Broken(f"{where}: its hash does not match its contents")
        if document.get("key_id") != key_id(key) or not signature_holds(
            key, data, item["signature"]
        ):
            raise _Broken(f"{where}: its signature does not verify with the given key")
        leaf = merkle.leaf_hash(head_leaf(stream, head["seq"], head["hash"]))
        path = [bytes.fromhex(node) for node in head["path"]]
        found = merkle.root_from_path(leaf, head["position"], document["head_count"], path)
        if found is None or found.hex() != document["heads_root"]:
            raise _Broken(f"{where}: the head it lists for {stream} is not in its signed root")
        seq = head["seq"]
        # A head in the pruned part can only be checked where a tombstone ends.
        known = pruned.ends.get(seq) if seq <= pruned.through else chain.get(seq)
        if seq < 1 or ((seq > pruned.through or known is not None) and known != head["hash"]):
            raise _Broken(f"{where}: signed {stream} at seq {seq} with hash {head['hash'][:12]}…, "
                          "which is not the bundle's event there (the events were rewritten)")  # fmt: skip
        checked += 1
        covered = max(covered, seq)
    if chain and covered < max(chain):
        raise _Broken(f"{EVENTS}: events after seq {covered} are covered by no signed digest")
    return checked
