"""The objects whose lifetimes match the protocol: a session and the Mail (transaction) in it."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

_B32 = "0123456789BCDFGHJKLMNPQRSTVWXYZ"  # no vowels: ids never spell words


# A message over this size is large, everywhere it matters: it is classified in a worker
# process (pipeline.offload), committed in a transaction of its own (store.writer), and read
# for delivery only when its turn comes instead of with the claim or the hand-off
# (delivery.worker), so that several of them do not sit in memory at once.
LARGE_MESSAGE_BYTES = 1024 * 1024


def is_large(size: int) -> bool:
    return size > LARGE_MESSAGE_BYTES


# Whole-message C calls (counts, searches) on a large message are made on pieces of this size:
# one call over 20 MB holds the GIL for 10-20 ms, and the event loop waits that long for it.
GIL_STEP = 1 << 20


class CRLFBytes(bytes):
    """Bytes known to have every CR and LF in a CRLF pair. A small message's bytes were
    checked again at each step (the DKIM signer, aiosmtplib's DATA preparation), 15 us each for
    10 KB; the type carries the answer instead. Made only where it is known: by the parse stage
    (which makes the message so), and from such bytes plus lines that were checked
    (Mail.stored_bytes, the DKIM signer). New bytes made from them are plain bytes again."""


def is_canonical_crlf(data: bytes, step: int = GIL_STEP) -> bool:
    """Every CR and every LF in `data` is part of a CRLF pair (what the parse stage makes of
    every message). Counted in C, without a copy of the message, `step` bytes at a time."""
    if type(data) is CRLFBytes:
        return True
    last = (0, 0, 0)
    for counts in _running_crlf_counts(data, step):
        last = counts
    return last[0] == last[1] == last[2]


async def is_canonical_crlf_in_steps(data: bytes, step: int = GIL_STEP) -> bool:
    """`is_canonical_crlf(data)`, the event loop running between two steps."""
    if type(data) is CRLFBytes:
        return True
    last = (0, 0, 0)
    for counts in _running_crlf_counts(data, step):
        last = counts
        await asyncio.sleep(0)
    return last[0] == last[1] == last[2]


def _running_crlf_counts(data: bytes, step: int) -> Iterator[tuple[int, int, int]]:
    """CRs, LFs and CRLF pairs counted so far, after each `step` bytes."""
    cr = lf = pairs = 0
    for start in range(0, len(data), step):
        piece = crlf_counts(data, start, start + step)
        cr, lf, pairs = cr + piece[0], lf + piece[1], pairs + piece[2]
        yield cr, lf, pairs


async def contains_in_steps(data: bytes | bytearray, needle: bytes,
                            step: int = GIL_STEP) -> bool:
    """`needle in data`, `step` bytes at a time with the event loop running in between (each
    search reaches into the next step far enough that no occurrence across a step is missed;
    data of one step is searched without giving the loop a turn)."""
    for start in range(0, len(data), step):
        if start:
            await asyncio.sleep(0)
        if data.find(needle, start, start + step + len(needle) - 1) >= 0:
            return True
    return False


def crlf_counts(data: bytes, start: int, end: int) -> tuple[int, int, int]:
    """CRs, LFs and CRLF pairs in data[start:end]; a pair across `end` counts here."""
    pairs = data.count(b"\r\n", start, end) + (data[end - 1:end + 1] == b"\r\n")
    return data.count(b"\r", start, end), data.count(b"\n", start, end), pairs


def new_queue_id() -> str:
    """A sortable, unique queue id: microseconds since the epoch plus 40 random bits."""
    n = time.time_ns() // 1000
    head = ""
    while n:
        n, r = divmod(n, len(_B32))
        head = _B32[r] + head
    # 40 random bits in 8 base-31 digits (one call to the system's random source, not eight).
    r = int.from_bytes(secrets.token_bytes(5), "big")
    tail = ""
    for _ in range(8):
        r, d = divmod(r, len(_B32))
        tail += _B32[d]
    return head + tail


@dataclass
class SessionInfo:
    """One SMTP connection: who is at the other end and what they proved."""

    listener: str                  # "submission" | "mx" | "local" (gateway-generated mail)
    peer_ip: str = ""
    peer_port: int = 0
    helo: str = ""
    tls: bool = False
    auth_user: str | None = None
    trusted_host: str | None = None  # the name of the trusted application host, if any


@dataclass
class TrailEntry:
    """What one stage did (kept for logs, violation records and reports)."""

    stage: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mail:
    """One message transaction: envelope, bytes and what the stages learned about it."""

    session: SessionInfo
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes                          # the message as received, CRLF line endings
    direction: str = "outbound"         # outbound | inbound | local
    queue_id: str = field(default_factory=new_queue_id)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Filled by stages:
    message: EmailMessage | None = None     # parse
    message_id: str = ""                    # parse
    has_date: bool = True                   # parse: the message has a Date field
    header_from: list[str] = field(default_factory=list)  # parse: addresses in From
    identity: dict[str, Any] = field(default_factory=dict)  # identify: user, unit
    facts: Any = None                       # classify: the flat facts record
    verdict: str = "allow"                  # decide: allow | flag | quarantine | reject
    inbound_action: str = "allow"           # authenticate: what SPF/DKIM/DMARC call for
    verdict_detail: dict[str, Any] = field(default_factory=dict)
    prepend: list[bytes] = field(default_factory=list)  # header lines to add before storing
    trail: list[TrailEntry] = field(default_factory=list)
    handed_off: bool = False  # store writer: committed leased to this process's workers
    spool: str | None = None  # store writer: the spool file holding stored_bytes() (large mail)

    @property
    def size(self) -> int:
        return len(self.raw)

    def note(self, stage: str, outcome: str, **detail: Any) -> None:
        self.trail.append(TrailEntry(stage, outcome, detail))

    def stored_bytes(self) -> bytes:
        """What goes into the store: added header lines, then the message as received
        (CRLFBytes when the message is and so are the added lines)."""
        joined = b"".join(self.stored_parts())
        if type(self.raw) is CRLFBytes and all(map(is_canonical_crlf, self.prepend)):
            return CRLFBytes(joined)
        return joined

    def stored_parts(self) -> list[bytes]:
        """`stored_bytes()` in pieces, without copying the message (for writing it out)."""
        return [*self.prepend, self.raw]
