"""Verifying an evidence bundle offline: no database, only the bundle and a public key.

The checks, in order, stopping at the first that fails: the manifest's signature; every
file against its SHA-256 in the manifest, and no file unlisted; the events' hash chain;
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
from audit.bundles import DIGESTS, EVENTS, FORMAT, MANIFEST, PUBLIC_KEY, SIGNATURE
from audit.digests import document_bytes
from audit.hashing import ZERO_HASH, chain_hash
from audit.models import head_leaf
from audit.signing import BadKey, key_id, public_key_from_text, signature_holds


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
            chain = _check_events(bundle.read(EVENTS), stream)
            events = len(chain)
            digests = _check_digests(json.loads(bundle.read(DIGESTS)), chain, key, stream)
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


def _check_events(data: bytes, stream: str) -> list[str]:
    """The events' hashes in seq order, once their chain verifies."""
    hashes: list[str] = []
    prev = ZERO_HASH
    for n, line in enumerate(data.decode().splitlines(), start=1):
        record = json.loads(line)
        seq = record.get("seq")
        where = f"{EVENTS} line {n} ({stream} seq {seq})"
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
        hashes.append(prev)
    return hashes


def _check_digests(covering: list[dict[str, Any]], chain: list[str], key: Ed25519PublicKey,
                   stream: str) -> int:  # fmt: skip
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
        if not 1 <= seq <= len(chain) or chain[seq - 1] != head["hash"]:
            raise _Broken(f"{where}: signed {stream} at seq {seq} with hash {head['hash'][:12]}…, "
                          "which is not the bundle's event there (the events were rewritten)")  # fmt: skip
        checked += 1
        covered = max(covered, seq)
    if covered < len(chain):
        raise _Broken(f"{EVENTS}: events after seq {covered} are covered by no signed digest")
    return checked
