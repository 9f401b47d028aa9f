"""Maildir transport: one file per recipient under PATH/<recipient address>/new.

Each copy is written to `tmp/`, flushed to disk, then renamed into `new/` (the Maildir protocol),
so a reader never sees half a message and a crash leaves at most a stray file in `tmp/`. Plain
blocking file I/O: the worker runs `deliver()` in a thread.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from mailgw.delivery.result import DELIVERED, Result, permanent, temporary
from mailgw.durable import write_new


def _mailbox_name(address: str) -> str | None:
    """The directory name for a recipient, or None if it cannot be one safely."""
    local, _, domain = address.rpartition("@")
    name = f"{local}@{domain.lower()}" if local else address
    if (not name or name.startswith(".") or any(c in name for c in "/\\\0")
            or any(ord(c) < 32 for c in name) or len(name.encode()) > 255):
        return None
    return name


def write_one(root: Path, name: str, content: bytes) -> Path:
    """Write one message into the Maildir root/name atomically; return its path in new/."""
    box = root / name
    for sub in ("tmp", "new", "cur"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    unique = f"{time.time_ns()}.M{uuid.uuid4().hex}.{socket.gethostname().replace('/', '_')}"
    new = box / "new" / unique
    write_new(box / "tmp" / unique, new, content, 0o640)
    return new


def deliver(path: str | os.PathLike[str], recipients: Sequence[str],
            content: bytes) -> dict[str, Result]:
    """Write one copy per recipient; one Result per recipient."""
    root = Path(path)
    results: dict[str, Result] = {}
    for rcpt in recipients:
        name = _mailbox_name(rcpt)
        if name is None:
            results[rcpt] = permanent(f"550 5.1.3 {rcpt!r} cannot be a maildir name")
            continue
        try:
            target = write_one(root, name, content)
        except OSError as exc:
            # Disk full, permissions: the operator can fix it, so retry later.
            results[rcpt] = temporary(f"451 4.3.0 maildir write failed: {exc.strerror or exc}")
            continue
        results[rcpt] = Result(DELIVERED, f"250 2.0.0 delivered to maildir as {target.name}")
    return results
