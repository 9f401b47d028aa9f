"""Crash recovery: give back the leases of gateway processes on this machine that are gone.

A lease normally runs out by itself (a crashed node's entries are replayed by the others), but a
gateway killed and restarted on the same machine should not leave its mail waiting for that.
Node ids are `<machine hostname>:<pid>`; a lease held by a pid of this machine that no longer
exists is released at start-up, so the mail is delivered at once.
"""

from __future__ import annotations

import logging
import os
import socket

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgw.processes import is_running
from mailgw.store.models import QueueEntry

log = logging.getLogger("mailgw.queue")


def local_node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def release_dead_local_leases(sessions: sessionmaker[Session]) -> int:
    """Release leases held by processes of this machine that no longer run; returns how many."""
    prefix = f"{socket.gethostname()}:"
    released = 0
    with sessions.begin() as session:
        holders = session.scalars(
            select(QueueEntry.locked_by).where(QueueEntry.locked_by.startswith(prefix,
                                                                               autoescape=True))
            .distinct()).all()
        for holder in holders:
            pid_text = (holder or "").rpartition(":")[2]
            if not pid_text.isdigit() or is_running(int(pid_text)):
                continue
            result = session.execute(
                update(QueueEntry).where(QueueEntry.locked_by == holder)
                .values(locked_by=None, locked_until=None))
            released += int(getattr(result, "rowcount", 0) or 0)
    if released:
        log.warning("released %d queue entries leased by gateway processes that are gone",
                    released)
    return released
