"""The DATA preparation put into aiosmtplib gives byte for byte what aiosmtplib's own gives."""

from __future__ import annotations

import random
import re

import aiosmtplib.protocol
import pytest

from mailgw.delivery import fastdata
from mailgw.delivery import smtp as _delivery_smtp  # noqa: F401  (installs fastdata)
from mailgw.pipeline.mail import is_canonical_crlf

PIECES = [b"a", b"text ", b".", b"..", b"\r\n", b"\r", b"\n", b"\r\n.", b".\r\n", b"\n.",
          b"\r.", b"\x00", "ễ".encode()]


def _aiosmtplib_own(message: bytes) -> bytes:
    out = fastdata._original_normalize(message)
    return fastdata._original_period.sub(b"..", out) + b".\r\n"


def _installed(message: bytes) -> bytes:
    # What execute_data_command does with the names it finds in aiosmtplib.protocol, and
    # what it then writes.
    out = aiosmtplib.protocol.normalize_message_line_endings(message)
    out = aiosmtplib.protocol.PERIOD_REGEX.sub(b"..", out)
    out += b".\r\n"
    return bytes(out)


def test_installed_in_aiosmtplib() -> None:
    assert fastdata.install()
    assert aiosmtplib.protocol.normalize_message_line_endings is \
        fastdata.normalize_message_line_endings
    assert isinstance(aiosmtplib.protocol.PERIOD_REGEX, fastdata.PeriodQuoting)


@pytest.mark.parametrize("seed", range(4))
def test_same_bytes_as_aiosmtplib(seed: int) -> None:
    rng = random.Random(seed)
    canonical = 0
    for _ in range(3000):
        message = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 40)))
        if rng.random() < 0.5:  # mostly what the gateway sends: canonical CRLF
            message = message.replace(b"\r", b"").replace(b"\n", b"\r\n")
        canonical += is_canonical_crlf(message)
        assert _installed(message) == _aiosmtplib_own(message), message
    assert canonical > 1000  # the fast path was exercised


@pytest.mark.parametrize("seed", range(3))
async def test_prepared_in_steps_gives_the_same_bytes(seed: int) -> None:
    # Small steps put step ends everywhere, inside CRLF pairs and "\r\n." sequences included.
    rng = random.Random(seed)
    ready = 0
    for _ in range(800):
        message = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 60)))
        if rng.random() < 0.7:  # as stored: canonical, ending with a line break
            message = message.replace(b"\r", b"").replace(b"\n", b"\r\n") + b"\r\n"
        async with fastdata.prepared(message, step=rng.randrange(1, 9)):
            ready += fastdata._ready(message) is not None
            assert _installed(message) == _aiosmtplib_own(message), message
            if fastdata._ready(message) is not None:
                # The transport gets a view of bytes made beforehand, not a new copy.
                sent = aiosmtplib.protocol.PERIOD_REGEX.sub(b"..", message) + b".\r\n"
                assert isinstance(sent, memoryview)
        assert fastdata._ready(message) is None  # nothing kept after the block
    assert ready > 300  # the prepared path was exercised


async def test_prepared_lets_the_event_loop_run_between_steps() -> None:
    import asyncio

    message = (b"line of text\r\n" * 20000) + b".starts with a dot\r\n"
    turns = 0
    stop = asyncio.Event()

    async def other_session() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(other_session())
    async with fastdata.prepared(message, step=4096):
        seen_while_preparing = turns
        assert _installed(message) == _aiosmtplib_own(message)
    stop.set()
    await task
    assert seen_while_preparing > 50  # one turn per step or so, not one for the whole message


def test_quoting_alone_still_checks_a_message_it_was_not_given_normalised() -> None:
    # PERIOD_REGEX.sub skips the line-break count only for the very message the normaliser
    # just returned; any other message (bare LF before a dot here) gets aiosmtplib's regex.
    aiosmtplib.protocol.normalize_message_line_endings(b"first\r\n")
    odd = b"a\n.b\r\n"  # PERIOD_REGEX.sub alone, as a caller other than DATA would use it
    assert aiosmtplib.protocol.PERIOD_REGEX.sub(b"..", odd) == \
        fastdata._original_period.sub(b"..", odd) == b"a\n..b\r\n"


async def test_canonical_check_in_pieces_agrees_with_the_definition() -> None:
    # A large message is counted a piece at a time (with the event loop running between
    # pieces, or not); small pieces put piece ends everywhere, between the CR and LF of a
    # pair included.
    from mailgw.pipeline.mail import is_canonical_crlf_in_steps

    rng = random.Random(4279)
    bare = re.compile(rb"\r(?!\n)|(?<!\r)\n")
    for _ in range(3000):
        message = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 30)))
        if rng.random() < 0.5:
            message = message.replace(b"\r", b"").replace(b"\n", b"\r\n")
        expected = bare.search(message) is None
        for step in (1, 2, 3, 7, 1 << 20):
            assert is_canonical_crlf(message, step) == expected, (step, message)
            assert await is_canonical_crlf_in_steps(message, step) == expected, (step, message)


async def test_search_in_steps_agrees_with_in() -> None:
    from mailgw.pipeline.mail import contains_in_steps

    rng = random.Random(5321)
    for _ in range(2000):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 30)))
        for step in (1, 2, 3, 7, 1 << 20):
            assert await contains_in_steps(data, b"\r\n.", step) == (b"\r\n." in data)
            assert await contains_in_steps(bytearray(data), b"\r\n.", step) == (b"\r\n." in data)
