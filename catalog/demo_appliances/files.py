"""Writing outputs so that a rerun changes nothing and two builders at once do not collide."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

_CHUNK_BYTES = 1024 * 1024


def publish_dir(staging: Path, target: Path) -> None:
    """Move a finished directory into place; a concurrent builder that got there first wins."""
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def write_if_changed(path: Path, content: bytes) -> None:
    """Leave identical files untouched so their mtime tells consumers nothing changed."""
    if path.is_file() and path.read_bytes() == content:
        return
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(content)
    staged.replace(path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
