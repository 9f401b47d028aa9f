"""Files that survive a crash whole or not at all: the spool's message bodies, maildir copies."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def write_new(tmp: Path, final: Path, data: bytes | Sequence[bytes], mode: int) -> None:
    """Put `data` (bytes, or pieces written one after the other) at `final`: written to `tmp`
    (which must not exist) and fsynced, renamed, and the directory of the new name fsynced. A
    crash leaves `final` absent or complete; a failed write leaves neither file."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        for piece in [data] if isinstance(data, bytes) else data:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, final)
    sync_directory(final.parent)


def sync_directory(path: Path) -> None:
    """fsync a directory, so that a name made in it survives a crash too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
