"""The scratch folder of one import: where a download, the disk taken out of a package and its conversion live.

Each import gets a folder of its own under ``IMAGE_CACHE_DIR/.scratch/`` (on the cache's file system,
so the converted image is moved into the cache, not copied), readable by the portal only, and
removed when the import ends however it ends. A worker killed mid-way leaves its folder behind;
``sweep_dead_scratch`` removes those once no task could still be using them.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRATCH_DIR_NAME = ".scratch"


@contextmanager
def scratch_folder(cache_dir: Path) -> Iterator[Path]:
    """A new empty folder for one import, removed with everything in it on the way out."""
    base = cache_dir / SCRATCH_DIR_NAME
    folder = base / uuid.uuid4().hex
    for _attempt in range(3):
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700)
            break
        except FileNotFoundError:
            continue  # another import removed the empty base between our two calls
    else:
        folder.mkdir(mode=0o700)  # one last time, failing loudly
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        _remove_if_empty(base)


def sweep_dead_scratch(cache_dir: Path, *, older_than_seconds: float) -> None:
    """Remove the scratch folders of imports whose worker died (untouched for ``older_than_seconds``)."""
    base = cache_dir / SCRATCH_DIR_NAME
    if not base.is_dir():
        return
    dead_before = time.time() - older_than_seconds
    for folder in base.iterdir():
        try:
            if folder.lstat().st_mtime < dead_before:
                if folder.is_dir() and not folder.is_symlink():
                    shutil.rmtree(folder)
                else:
                    folder.unlink()
        except OSError:
            continue  # gone already, or not ours to remove
    _remove_if_empty(base)


def _remove_if_empty(base: Path) -> None:
    with contextlib.suppress(OSError):  # other imports are using it, or it is gone already
        base.rmdir()
