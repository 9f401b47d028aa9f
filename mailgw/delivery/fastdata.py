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
the loop running between them; inside its block aiosmtplib's calls find it ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiosmtplib.protocol as _protocol

from mailgw.pipeline.mail import contains_in_steps, crlf_counts, is_canonical_crlf

log = logging.getLogger("mailgw.delivery")

_original_normalize: Callable[[bytes], bytes] = _protocol.normalize_message_line_endings
_original_period: re.Pattern[bytes] = _protocol.PERIOD_REGEX


# Messages whose DATA bytes `prepared` worked out, by id, with the message itself (an id means
# that object only while it lives): message id -> (message, the bytes aiosmtplib will send).
_READY: dict[int, tuple[bytes, bytes]] = {}

STEP = 1 << 20  # bytes looked at between two turns of the event loop


def _ready(message: bytes) -> bytes | None:
    hit = _READY.get(id(message))
    return hit[1] if hit is not None and hit[0] is message else None


@contextlib.asynccontextmanager
async def prepared(message: bytes, step: int = STEP) -> AsyncIterator[None]:
    """Inside the block, aiosmtplib's DATA preparation of `message` is already done (for a
    canonical message ending in CRLF, which is what the store holds; others take the usual
    path)."""
    if not message.endswith(b"\r\n") or not await _canonical_in_steps(message, step):
        yield
        return
    quoted = message
    if message.startswith(b".") or await contains_in_steps(message, b"\r\n.", step):
        quoted = (b"\r\n" + message).replace(b"\r\n.", b"\r\n..")[2:]
    _READY[id(message)] = (message, quoted)
    try:
        yield
    finally:
        _READY.pop(id(message), None)


async def _canonical_in_steps(message: bytes, step: int) -> bool:
    """`is_canonical_crlf(message)`, a step at a time."""
    cr = lf = pairs = 0
    for start in range(0, len(message), step):
        piece = crlf_counts(message, start, start + step)
        cr, lf, pairs = cr + piece[0], lf + piece[1], pairs + piece[2]
        await asyncio.sleep(0)
    return cr == lf == pairs


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

    def sub(self, repl: bytes, message: bytes, count: int = 0) -> bytes:
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
