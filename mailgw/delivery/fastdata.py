"""aiosmtplib's DATA preparation without its per-byte regular expressions, for canonical mail.

Before DATA, aiosmtplib turns lone CR and LF into CRLF and doubles a leading dot on every line,
with two regular expressions that look at every byte: about 140 us for a 10 KB message (5% of
the gateway's CPU per message in the load benchmark) and 0.28 s on the event loop for a 22 MB
one. Every message the gateway stores is already in canonical CRLF form (the parse stage
makes it so), and for such a message plain bytes operations give the same result. `install()`
puts these functions in aiosmtplib's place; a message that is not canonical still goes through
aiosmtplib's own code, and a test compares both on random input.

Even bytes operations take 40-100 ms on a 20 MB message, in one piece on the event loop, while
every other session waits. `prepared(message)` works the result out beforehand, in steps with
the loop running between them, end of data included; inside its block aiosmtplib's calls find
it ready. aiosmtplib then appends the end of data (`message += b".\r\n"`, a copy of the whole
message) and the transport copies what the socket does not take at once (twice, for bytes):
about 30 ms on the loop per 20 MB delivery. For a prepared message PERIOD_REGEX.sub returns
`DataBytes`, whose `+ b".\r\n"` is a view of the bytes made beforehand, which the transport
slices without a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiosmtplib.protocol as _protocol

from mailgw.pipeline.mail import is_canonical_crlf, is_canonical_crlf_in_steps

log = logging.getLogger("mailgw.delivery")

_original_normalize: Callable[[bytes], bytes] = _protocol.normalize_message_line_endings
_original_period: re.Pattern[bytes] = _protocol.PERIOD_REGEX


class DataBytes:
    """A prepared message as PERIOD_REGEX.sub gives it to aiosmtplib: the dot-stuffed message
    and the end of data, made beforehand. aiosmtplib's next step is `message += b".\r\n"`."""

    def __init__(self, data: bytearray) -> None:
        self.data = data  # ends with ".\r\n"

    def __add__(self, end: bytes) -> memoryview:
        if end != b".\r\n":
            raise TypeError("DataBytes only takes the end of data")
        return memoryview(self.data)


# Messages whose DATA bytes `prepared` worked out, by id, with the message itself (an id means
# that object only while it lives): message id -> (message, what aiosmtplib will send).
_READY: dict[int, tuple[bytes, DataBytes]] = {}

STEP = 1 << 20  # bytes looked at between two turns of the event loop


def _ready(message: bytes) -> DataBytes | None:
    hit = _READY.get(id(message))
    return hit[1] if hit is not None and hit[0] is message else None


@contextlib.asynccontextmanager
async def prepared(message: bytes, step: int = STEP) -> AsyncIterator[None]:
    """Inside the block, aiosmtplib's DATA preparation of `message` is already done (for a
    canonical message ending in CRLF, which is what the store holds; others take the usual
    path)."""
    if (not message.endswith(b"\r\n") or not _appends_end_of_data()
            or not await is_canonical_crlf_in_steps(message, step)):
        yield
        return
    _READY[id(message)] = (message, DataBytes(await _stuffed_in_steps(message, step)))
    try:
        yield
    finally:
        _READY.pop(id(message), None)


async def _stuffed_in_steps(message: bytes, step: int) -> bytearray:
    """The message with a dot doubled at the start of every line, and the end of data: what
    aiosmtplib sends for a canonical message ending in CRLF. Made in pieces that end after a
    CRLF (so each starts a line), the loop running between them."""
    out = bytearray()
    view = memoryview(message)
    start = 0
    while start < len(message):
        if start:
            await asyncio.sleep(0)
        cut = message.find(b"\r\n", start + step)
        end = len(message) if cut < 0 else cut + 2
        if message.startswith(b".", start):
            out += b"."
        if message.find(b"\r\n.", start, end) < 0:
            out += view[start:end]  # most pieces: copied once, into `out`
        else:
            out += message[start:end].replace(b"\r\n.", b"\r\n..")
        start = end
    out += b".\r\n"
    return out


# The last message normalize_message_line_endings returned: canonical CRLF (aiosmtplib calls
# PERIOD_REGEX.sub on it next, which need not count its line breaks again).
_normalized = threading.local()


def normalize_message_line_endings(message: bytes) -> bytes:
    """aiosmtplib.protocol.normalize_message_line_endings, fast when nothing is to change."""
    if _ready(message) is not None:
        return message  # canonical, ends with CRLF
    if not is_canonical_crlf(message):
        out = _original_normalize(message)
    else:
        out = message if message.endswith(b"\r\n") else message + b"\r\n"
    _normalized.message = out
    return out


class PeriodQuoting:
    """Stands for aiosmtplib's PERIOD_REGEX (`(?m)^\\.`), which it only uses as
    `PERIOD_REGEX.sub(b"..", message)` on a message already normalised to CRLF."""

    pattern = _original_period.pattern

    def sub(self, repl: bytes, message: bytes, count: int = 0) -> bytes | DataBytes:
        ready = _ready(message) if repl == b".." and not count else None
        if ready is not None:
            return ready
        normalized = message is getattr(_normalized, "message", None)
        _normalized.message = None  # not kept alive after its delivery
        if repl != b".." or count or not (normalized or is_canonical_crlf(message)):
            return _original_period.sub(repl, message, count)
        if not message.startswith(b".") and b"\r\n." not in message:
            return message
        # After CRLF only, since every line break is one: where (?m)^ matches.
        return (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:]


@functools.cache
def _appends_end_of_data() -> bool:
    """aiosmtplib's DATA quotes, appends the end of data and writes, as DataBytes expects.
    Asked at the first large delivery, not at import: reading aiosmtplib's source costs a few
    milliseconds, which every command-line call would pay."""
    try:
        source = inspect.getsource(_protocol.SMTPProtocol.execute_data_command)
    except (OSError, TypeError):
        source = ""
    steps = ("PERIOD_REGEX.sub(", 'message += b".\\r\\n"', "self.write(message)")
    found = [source.find(step) for step in steps]
    if -1 not in found and found == sorted(found):
        return True
    log.warning("aiosmtplib's DATA changed: large messages go through its own preparation")
    return False


def install() -> bool:
    """Use the functions above in aiosmtplib (once; False if its internals are not as expected)."""
    current: Any = _protocol.PERIOD_REGEX
    if isinstance(current, PeriodQuoting):
        return True
    if not (callable(_protocol.normalize_message_line_endings)
            and isinstance(current, re.Pattern) and current.pattern == rb"(?m)^\."):
        log.warning("aiosmtplib internals changed: DATA goes through its own regexes")
        return False
    _protocol.normalize_message_line_endings = normalize_message_line_endings
    _protocol.PERIOD_REGEX = PeriodQuoting()  # type: ignore[assignment]
    return True
