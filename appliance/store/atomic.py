"""Power-cut-safe file replacement: temp file, fsync, rename, fsync of the folder."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o640) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either old or new, never a mix.

    The temp file lives in the same folder so that ``os.replace`` is a rename on
    one filesystem. A failure (full disk, say) removes the temp file and leaves
    the old file untouched.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    # A temp file a killed writer with the same ids left would keep its old mode:
    # create it afresh (O_EXCL), so ``mode`` (less the umask) is what the file gets.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        fsync_dir(path.parent)
    except OSError as e:
        raise OSError(e.errno, f"{path} was replaced but its folder could not be synced "
                               f"({e.strerror}); a power cut now may bring back the old "
                               "version") from None


def remove_stale_temps(path: Path, *, older_than_s: float = 10.0) -> int:
    """Delete temp files a killed writer left beside ``path``; returns how many.

    They are never read (the rename is what publishes a write), but each holds
    part of a document, so the single writer tidies them before it writes.
    """
    removed = 0
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
    return removed
