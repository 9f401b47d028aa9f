"""is_running: a process that has exited counts as gone even while it is a zombie (not yet
reaped), so a restarted gateway gives back the queue leases of its killed processes at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import select

from mailgw.processes import is_running
from mailgw.queue.enqueue import enqueue_rows
from mailgw.queue.recovery import release_dead_local_leases
from mailgw.store.db import session_factory
from mailgw.store.models import QueueEntry, utcnow


def _zombie() -> subprocess.Popen[bytes]:
    """A child that has exited and is not reaped yet (Popen reaps only when asked)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                return child
        time.sleep(0.01)
    raise AssertionError("the child did not exit")


def test_running_exited_and_zombie_processes() -> None:
    assert is_running(os.getpid())
    zombie = _zombie()
    try:
        assert not is_running(zombie.pid)
    finally:
        zombie.wait()
    assert not is_running(zombie.pid)  # reaped: no such process


def test_leases_of_a_killed_process_are_released_while_it_is_a_zombie(engine) -> None:
    Session = session_factory(engine)
    zombie = _zombie()
    try:
        holder = f"{socket.gethostname()}:{zombie.pid}"
        with Session.begin() as s:
            m = enqueue_rows(s, "a@phutho.gov.vn", ["b@example.org"], b"x\r\n", "outbound")
            for e in m.entries:
                e.locked_by, e.locked_until = holder, utcnow() + timedelta(minutes=2)
        assert release_dead_local_leases(Session) == 1
        with Session() as s:
            assert s.scalars(select(QueueEntry.locked_by)).all() == [None]
    finally:
        zombie.wait()
