"""The block-wise DATA reader gives what aiosmtpd's line-by-line loop gives, however the bytes
arrive, and leaves whatever the client pipelined after the data in the stream."""

from __future__ import annotations

import asyncio
import random

import pytest

from mailgw.smtp.data import DataState, read_data

LINE_LIMIT = 100  # a line's bytes with its CRLF, as GatewaySMTP.line_length_limit
SIZE_LIMIT = 3000
NEXT_COMMAND = b"QUIT\r\n"


async def aiosmtpd_reference(reader: asyncio.StreamReader) -> tuple[DataState, bytes]:
    """aiosmtpd 1.4's smtp_DATA loop (one readuntil per CRLF line), transcribed."""
    data: list[bytearray] = []
    fragments: list[bytes] = []
    num_bytes = 0
    state = DataState.OK
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:
            if state is DataState.OK:
                state = DataState.TOO_LONG
            data *= 0
            line = await reader.read(exc.consumed)
        if not fragments and line == b".\r\n":
            break
        num_bytes += len(line)
        if state is DataState.OK and num_bytes > SIZE_LIMIT:
            state = DataState.TOO_MUCH
            data *= 0
        fragments.append(line)
        if line.endswith(b"\r\n"):
            if state is DataState.OK:
                whole = b"".join(fragments)
                if len(whole) > LINE_LIMIT:
                    state = DataState.TOO_LONG
                    data *= 0
                else:
                    data.append(bytearray(whole))
            fragments *= 0
    if state is not DataState.OK:
        return state, b""
    for text in data:
        if text.startswith(b"."):
            del text[0]
    return state, b"".join(data)


async def _feed(reader: asyncio.StreamReader, stream: bytes, sizes: list[int]) -> None:
    pos = 0
    for size in sizes:
        reader.feed_data(stream[pos:pos + size])
        pos += size
        await asyncio.sleep(0)  # let the reader run between pieces, as with a real socket
    if pos < len(stream):
        reader.feed_data(stream[pos:])
    reader.feed_eof()


async def _run(reading, stream: bytes, sizes: list[int]) -> tuple[object, bytes]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    feeder = asyncio.create_task(_feed(reader, stream, sizes))
    result = await asyncio.wait_for(reading(reader), 5)
    await feeder
    return result, await reader.read()


async def _both(stream: bytes, sizes: list[int]) -> None:
    async def ours(reader: asyncio.StreamReader) -> tuple[DataState, bytes]:
        got = await read_data(reader, size_limit=SIZE_LIMIT, line_limit=LINE_LIMIT)
        return got.state, got.content

    expected, rest_ref = await _run(aiosmtpd_reference, stream, sizes)
    data_size = len(stream) - len(b".\r\n" + NEXT_COMMAND)
    if expected[0] is DataState.TOO_LONG and data_size > SIZE_LIMIT:
        # The one chosen difference: too much data wins when both are wrong (aiosmtpd
        # answers whichever it met first).
        expected = (DataState.TOO_MUCH, b"")
    got, rest = await _run(ours, stream, sizes)
    assert got == expected, (stream, sizes)
    assert rest == rest_ref == NEXT_COMMAND


PIECES = [b"a", b"xyz" * 7, b".", b"..", b"\r\n", b"\r", b"\n", b"\r\n.", b".\r\n",
          b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n..\r\n", b"b" * 90, b"c" * 99, b"\x00"]


def _streams(seed: int, count: int) -> list[tuple[bytes, list[int]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        body = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 60)))
        if rng.random() < 0.1:  # around the size limit
            body = (b"d" * 48 + b"\r\n") * rng.randrange(58, 63) + body[:rng.randrange(0, 3)]
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
        # The data ends at the first CRLF.CRLF that starts on a line boundary (the data
        # starts on one): cut there, so that only the pipelined command follows.
        framed = b"\r\n" + body + b".\r\n"
        stream = framed[2:framed.find(b"\r\n.\r\n") + 5] + NEXT_COMMAND
        cuts = sorted(rng.sample(range(1, len(stream)), min(len(stream) - 1, rng.randrange(0, 8))))
        sizes = [b - a for a, b in zip([0, *cuts], cuts, strict=False)]
        out.append((stream, sizes))
    return out


@pytest.mark.parametrize("seed", range(8))
async def test_same_result_as_aiosmtpd_for_random_streams(seed: int) -> None:
    for stream, sizes in _streams(seed, 300):
        await _both(stream, sizes)


@pytest.mark.parametrize("stream", [
    b".\r\n",                                  # empty message
    b"\r\n.\r\n",                              # one empty line
    b"..\r\n.\r\n",                            # one line that is a single (stuffed) dot
    b"a\r\n.\r\n", b"ab\r\n.\r\n", b"abc\r\n.\r\n",
    b"a\n.\r\nb\r\n.\r\n",                     # bare LF before ".\r\n" does not end the data
    b"a\r.\r\nb\r\n.\r\n",                     # nor does a bare CR
    b"a\r\n.\n\r\n.\r\n",                      # nor ".\n"
    b"x" * 98 + b"\r\n.\r\n",                  # longest line allowed
    b"x" * 99 + b"\r\n.\r\n",                  # one too long
    b"x" * 97 + b"\r\r\n.\r\n",                # a bare CR counts as line text
    b".." + b"x" * 97 + b"\r\n.\r\n",          # counted before unstuffing, as aiosmtpd does
    (b"y" * 48 + b"\r\n") * 60 + b".\r\n",     # exactly at the size limit (3000 bytes)...
    (b"y" * 48 + b"\r\n") * 60 + b"z\r\n.\r\n",  # ...and just over it
])
async def test_edge_cases_match_aiosmtpd_at_every_split(stream: bytes) -> None:
    stream += NEXT_COMMAND
    for cut in range(1, len(stream)):
        await _both(stream, [cut])
    await _both(stream, [1] * len(stream))


async def test_large_message_is_read_in_few_steps() -> None:
    """A 2 MB message of 76-character lines needs about as many reads as blocks, not lines."""
    line = b"QUJD" * 19 + b"\r\n"
    body = line * (2_000_000 // len(line))
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    reads = 0
    original = reader.readuntil

    async def counting(separator: bytes = b"\n") -> bytes:
        nonlocal reads
        reads += 1
        return await original(separator)

    reader.readuntil = counting  # type: ignore[method-assign]
    feeder = asyncio.create_task(_feed(reader, body + b".\r\n" + NEXT_COMMAND,
                                       [65536] * (len(body) // 65536)))
    got = await asyncio.wait_for(
        read_data(reader, size_limit=None, line_limit=LINE_LIMIT), 10)
    await feeder
    assert got.state is DataState.OK and got.content == body
    assert reads <= 2 * (len(body) // 65536 + 2), reads
