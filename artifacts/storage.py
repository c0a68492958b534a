"""Where artifact bytes live: a content-addressed store behind a small interface.

The filesystem store is the default (under BULWARK_VAR_DIR/artifacts, or
BULWARK_ARTIFACT_DIR). Another backend, such as an S3-compatible bucket, implements the
same four methods and is named by BULWARK_ARTIFACT_STORAGE (a dotted path).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class ArtifactStorage(Protocol):
    def put(self, sha256: str, source: Path) -> None:
        """Keep the file at `source` under `sha256` (a no-op when it is already kept)."""

    def open(self, sha256: str) -> BinaryIO:
        """The stored bytes, for reading."""

    def exists(self, sha256: str) -> bool: ...

    def scratch_dir(self) -> Path:
        """Where a download may be written before it is hashed and put."""


class FilesystemStorage:
    """Files at ROOT/ab/cd/abcd…, written once, atomically (rename after fsync)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, source: Path) -> None:
        target = self.path(sha256)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
            source.open("rb") as f,
        ):
            shutil.copyfileobj(f, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, 0o440)
        os.replace(tmp.name, target)

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def scratch_dir(self) -> Path:
        scratch = self.root / "incoming"
        scratch.mkdir(exist_ok=True)
        return scratch


@functools.cache
def _storage(dotted: str, root: str) -> ArtifactStorage:
    if not dotted:
        return FilesystemStorage(root)
    factory = import_string(dotted)
    storage: ArtifactStorage = factory()
    return storage


def get_storage() -> ArtifactStorage:
    return _storage(settings.BULWARK_ARTIFACT_STORAGE, str(settings.BULWARK_ARTIFACT_DIR))
