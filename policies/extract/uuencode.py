"""uuencoded files inside text (`begin 644 name` ... `end`), as old mailers and evasion tools send.

Finds the blocks, decodes them leniently (as the `uu` module did) and returns the text with the
blocks removed, so the file is examined as an attachment and its encoded lines are not read as text.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

_BEGIN = re.compile(r"^begin\s+([0-7]{3,4})\s+(\S.*?)\s*$")


@dataclass(frozen=True)
class UuFile:
    name: str
    data: bytes
    complete: bool


def _decode_line(line: str) -> bytes:
    raw = line.encode("latin-1", errors="replace")
    try:
        return binascii.a2b_uu(raw)
    except binascii.Error:
        # Some encoders pad lines differently; cut to the length the line announces.
        count = (((raw[0] - 32) & 63) * 4 + 5) // 3 if raw else 0
        try:
            return binascii.a2b_uu(raw[:count])
        except binascii.Error:
            return b""


def find_uuencoded(text: str, cap: int) -> tuple[list[UuFile], str]:
    """The uuencoded files of `text` (each at most `cap` bytes) and the text without them."""
    if "begin" not in text:
        return [], text
    lines = text.splitlines()
    kept: list[str] = []
    files: list[UuFile] = []
    i = 0
    while i < len(lines):
        match = _BEGIN.match(lines[i])
        if not match:
            kept.append(lines[i])
            i += 1
            continue
        chunks: list[bytes] = []
        size = 0
        complete = False
        i += 1
        while i < len(lines):
            line = lines[i].rstrip("\r\n")
            i += 1
            if line.strip() == "end":
                complete = True
                break
            if size <= cap:
                piece = _decode_line(line)
                size += len(piece)
                chunks.append(piece)
        files.append(UuFile(name=match.group(2), data=b"".join(chunks)[:cap], complete=complete))
    return files, "\n".join(kept)
