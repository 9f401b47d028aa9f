"""The event loop a gateway process runs on (`gateway.event_loop`).

uvloop (libuv) runs the same asyncio code with less CPU per socket operation and callback:
measured in bench/load.py about 15 % less CPU per message than the standard library's loop.
Where uvloop is not installed (it has no Windows build), the standard loop is used and the log
says so, rather than refusing to start.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("mailgw")


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop of `kind` ("uvloop" or "asyncio")."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("gateway.event_loop = uvloop, but uvloop is not installed: "
                        "using asyncio's event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
