"""Is a process of this machine still running? (Crash recovery asks about dead gateway
processes: their queue leases and scratch files.)"""

from __future__ import annotations

import os
from pathlib import Path


def is_running(pid: int) -> bool:
    """True if `pid` runs. A zombie does not: a gateway process killed with its parent is
    reparented to init and stays a zombie until init reaps it, which may be later than the
    restarted gateway asks (its leases were then kept for their full length)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to ask (or it just went): assume it runs, as before
    # The state follows the parenthesised command name, which may itself contain ") ".
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])
