"""Evidence bundles verify offline with the public key, and every kind of edit shows."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from audit.bundle_verify import verify_bundle
from audit.bundles import write_bundle
from audit.digests import make_digest
from audit.events import NewEvent, record_events
from audit.hashing import canonical_json
from audit.signing import current_public_key, public_pem, sign


def write(stream: str, *kinds: str) -> None:
    with transaction.atomic():
        record_events(
            [NewEvent(stream=stream, kind=k, actor="system", payload={"k": k}) for k in kinds]
        )


@pytest.fixture
def bundle(transactional_db: None, allow_audit_truncate: None, tmp_path: Path) -> Path:
    write("run:5", "run.started", "step.succeeded")
    write("run:6", "run.started")
    make_digest()
    write("run:5", "step.failed", "run.failed")  # covered by the digest the bundle makes
    path = tmp_path / "run-5.zip"
    with path.open("wb") as target:
        write_bundle(target, stream="run:5", subject={"run": 5}, files={"report.html": b"<p>hi</p>"},
                     created_by="user:carol")  # fmt: skip
    return path


def rewrite(path: Path, change: dict[str, Any]) -> None:
    """Replace (bytes), drop (None) or add files in the zip at `path`."""
    with zipfile.ZipFile(path) as old:
        contents = {name: old.read(name) for name in old.namelist()}
    for name, data in change.items():
        if data is None:
            contents.pop(name)
        else:
            contents[name] = data
    with zipfile.ZipFile(path, "w") as new:
        for name, data in contents.items():
            new.writestr(name, data)


def read(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as bundle:
        return bundle.read(name)


def resign(path: Path, **files: bytes) -> None:
    """Change files and, as the installation itself could, sign a manifest that matches."""
    import hashlib

    manifest = json.loads(read(path, "manifest.json"))
    for name, data in files.items():
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
    data = canonical_json(manifest).encode()
    rewrite(path, {**files, "manifest.json": data, "manifest.sig": sign(data).encode()})


def test_an_untouched_bundle_verifies_with_the_public_key(bundle: Path) -> None:
    result = verify_bundle(bundle, current_public_key())
    assert result.ok, result.problem
    assert (result.stream, result.events_checked, result.digests_checked) == ("run:5", 4, 2)
    assert result.key_from_bundle is False
    names = set(zipfile.ZipFile(bundle).namelist())
    assert names == {"events.jsonl", "digests.json", "tombstones.json", "public_key.pem",
                     "report.html", "manifest.json", "manifest.sig"}  # fmt: skip


def test_a_bundle_made_by_another_key_is_refused(bundle: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    result = verify_bundle(bundle, other)
    assert not result.ok
    assert "not by the given key" in (result.problem or "")


def test_a_changed_file_is_caught_by_the_manifest(bundle: Path) -> None:
    rewrite(bundle, {"report.html": b"<p>nothing happened</p>"})
    assert verify_bundle(bundle, current_public_key()).problem == (
        "report.html: its SHA-256 is not the manifest's (the file was changed)"
    )


def test_an_added_or_removed_file_is_caught(bundle: Path) -> None:
    rewrite(bundle, {"extra.txt": b"x"})
    assert "extra.txt: in the bundle but not in its manifest" in (
        verify_bundle(bundle).problem or ""
    )
    rewrite(bundle, {"extra.txt": None, "report.html": None})
    assert "report.html: in the manifest but not in the bundle" in (
        verify_bundle(bundle).problem or ""
    )


def test_a_forged_manifest_signature_is_caught(bundle: Path) -> None:
    manifest = json.loads(read(bundle, "manifest.json"))
    manifest["subject"] = {"run": 6}
    rewrite(bundle, {"manifest.json": canonical_json(manifest).encode()})
    assert verify_bundle(bundle).problem == "manifest.sig: the manifest's signature does not verify"


def test_an_altered_event_is_caught_at_its_line(bundle: Path) -> None:
    lines = read(bundle, "events.jsonl").decode().splitlines()
    event = json.loads(lines[1])
    event["actor"] = "user:mallory"
    lines[1] = canonical_json(event)
    resign(bundle, **{"events.jsonl": ("\n".join(lines) + "\n").encode()})
    assert verify_bundle(bundle).problem == (
        "events.jsonl line 2 (run:5 seq 2): its hash does not match its contents (the event was altered)"
    )


def test_rewritten_events_are_caught_by_the_signed_digests(bundle: Path) -> None:
    # Even with the chain rebuilt and the manifest signed again, the digests' signed
    # heads are not the events'.
    from audit.hashing import ZERO_HASH, chain_hash

    prev, lines = ZERO_HASH, []
    for line in read(bundle, "events.jsonl").decode().splitlines():
        event = json.loads(line)
        if event["seq"] == 2:
            event["payload"] = {"k": "nothing to see"}
        event["prev_hash"] = prev
        event["hash"] = chain_hash({k: v for k, v in event.items() if k not in ("id", "hash")})
        prev = event["hash"]
        lines.append(canonical_json(event))
    resign(bundle, **{"events.jsonl": ("\n".join(lines) + "\n").encode()})
    problem = verify_bundle(bundle).problem or ""
    assert problem.startswith("digests.json: digest #1: signed run:5 at seq 2")
    assert "which is not the bundle's event there" in problem


def test_a_deleted_or_reordered_event_is_caught(bundle: Path) -> None:
    lines = read(bundle, "events.jsonl").decode().splitlines()
    resign(bundle, **{"events.jsonl": ("\n".join([lines[0], lines[2], lines[3]]) + "\n").encode()})
    assert verify_bundle(bundle).problem == (
        "events.jsonl line 2 (run:5 seq 3): expected seq 2 (an event is missing or out of order)"
    )


def test_dropping_the_last_events_shows_in_the_digests(bundle: Path) -> None:
    lines = read(bundle, "events.jsonl").decode().splitlines()
    resign(bundle, **{"events.jsonl": ("\n".join(lines[:2]) + "\n").encode()})
    assert "signed run:5 at seq 4" in (verify_bundle(bundle).problem or "")


def test_a_forged_digest_is_caught(bundle: Path) -> None:
    digests = json.loads(read(bundle, "digests.json"))
    digests[0]["head"]["path"] = ["00" * 32]
    resign(bundle, **{"digests.json": canonical_json(digests).encode()})
    assert verify_bundle(bundle).problem == (
        "digests.json: digest #1: the head it lists for run:5 is not in its signed root"
    )
    digests[0]["document"]["head_count"] = 99
    resign(bundle, **{"digests.json": canonical_json(digests).encode()})
    assert "digest #1: its hash does not match its contents" in (
        verify_bundle(bundle).problem or ""
    )


def test_a_bundle_without_digests_does_not_prove_its_events(bundle: Path) -> None:
    resign(bundle, **{"digests.json": b"[]"})
    assert (
        verify_bundle(bundle).problem
        == "events.jsonl: events after seq 0 are covered by no signed digest"
    )


def test_garbage_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    assert "cannot be read" in (verify_bundle(path).problem or "")


def test_audit_verify_checks_a_bundle_offline(bundle: Path, tmp_path: Path, capsys: Any) -> None:
    key = tmp_path / "key.pem"
    key.write_text(public_pem(current_public_key()))
    call_command("audit_verify", "--bundle", str(bundle), "--public-key", str(key))
    assert "audit: bundle of run:5 verifies: 4 events, 2 signed digests" in capsys.readouterr().out
    call_command("audit_verify", "--bundle", str(bundle))
    assert "not who made it" in capsys.readouterr().err
    rewrite(bundle, {"report.html": b"x"})
    with pytest.raises(CommandError, match=r"report\.html: its SHA-256") as error:
        call_command("audit_verify", "--bundle", str(bundle), "--public-key", str(key))
    assert error.value.returncode == 1
    key.write_text("nonsense")
    with pytest.raises(CommandError, match="--public-key"):
        call_command("audit_verify", "--bundle", str(bundle), "--public-key", str(key))


def test_a_bundle_refuses_a_file_name_it_uses_itself(db: None) -> None:
    with pytest.raises(ValueError, match=r"manifest\.json"):
        write_bundle(
            io.BytesIO(), stream="run:1", subject={}, files={"manifest.json": b""}, created_by="x"
        )
