"""gateway.event_loop: the loop a gateway process runs on, and the fallback without uvloop."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from mailgw.loops import new_event_loop


def _kind(loop: asyncio.AbstractEventLoop) -> str:
    return type(loop).__module__.split(".")[0]


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_the_configured_loop_runs_coroutines(kind) -> None:
    loop = new_event_loop(kind)
    try:
        assert _kind(loop) == kind
        assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
    finally:
        loop.close()


def test_without_uvloop_the_standard_loop_is_used_and_the_log_says_so(monkeypatch,
                                                                        caplog) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` fail
    with caplog.at_level(logging.WARNING, logger="mailgw"):
        loop = new_event_loop("uvloop")
    try:
        assert _kind(loop) == "asyncio"
        assert "uvloop is not installed" in caplog.text
    finally:
        loop.close()
