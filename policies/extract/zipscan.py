"""Zip members the central directory does not list: what another unzip tool would still find.

Python's zipfile trusts the central directory (the last one, when archives are concatenated).
Other tools read local headers front to back, so a member left out of the directory, or a second
archive glued in front, is seen by some readers and not by others. This module finds local file
headers that no listed member covers and inflates them under the same caps.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass

_LOCAL = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


@dataclass(frozen=True)
class HiddenMember:
    name: str
    data: bytes
    encrypted: bool
    problem: str  # "" when the member was read whole


def _covered(data: bytes, infos: list[zipfile.ZipInfo]) -> list[tuple[int, int]]:
    ranges = []
    for info in infos:
        start = info.header_offset
        header = data[start : start + 30]
        if len(header) < 30 or not header.startswith(_LOCAL):
            continue
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        ranges.append((start, start + 30 + name_len + extra_len + info.compress_size))
    return ranges


def _inflate(data: bytes, start: int, size: int, method: int, cap: int,
             max_ratio: int, ratio_floor: int) -> tuple[bytes, str]:
    raw = data[start : start + size] if size else data[start:]
    if method == 0:
        return (raw[:cap], "" if len(raw) <= cap else "larger than the cap")
    if method != 8:
        return b"", f"compression method {method} not read"
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(raw, cap + 1)
    except zlib.error as exc:
        return b"", f"deflate: {exc}"
    if len(out) > cap:
        return b"", "archive_bomb: larger than the cap"
    used = len(raw) - len(inflater.unconsumed_tail) - len(inflater.unused_data)
    if len(out) > ratio_floor and len(out) / max(used, 1) > max_ratio:
        return b"", "archive_bomb: compression ratio"
    return out, ""


def end_records(data: bytes, infos: list[zipfile.ZipInfo]) -> int:
    """End-of-directory records outside every listed member (more than one: concatenated)."""
    ranges = _covered(data, infos)
    count = 0
    position = data.find(b"PK\x05\x06")
    while position != -1:
        if not any(start <= position < end for start, end in ranges):
            count += 1
        position = data.find(b"PK\x05\x06", position + 4)
    return count


def hidden_members(data: bytes, infos: list[zipfile.ZipInfo], cap: int, max_ratio: int,
                   ratio_floor: int, limit: int) -> list[HiddenMember]:
    """Local headers outside every listed member, read (at most `limit` of them)."""
    ranges = _covered(data, infos)
    found: list[HiddenMember] = []
    position = data.find(_LOCAL)
    while position != -1 and len(found) < limit:
        inside = next((end for start, end in ranges if start <= position < end), None)
        if inside is not None:
            position = data.find(_LOCAL, max(inside, position + 4))
            continue
        header = data[position : position + 30]
        if len(header) < 30:
            break
        _, _, flags, method, _, _, _, csize, _, name_len, extra_len = _LOCAL_HEADER.unpack(header)
        name_bytes = data[position + 30 : position + 30 + name_len]
        name = name_bytes.decode("utf-8", errors="replace") or "(no name)"
        body = position + 30 + name_len + extra_len
        if flags & 0x1:
            found.append(HiddenMember(name, b"", True, "encrypted"))
        elif name.endswith("/"):
            pass
        else:
            content, problem = _inflate(data, body, csize, method, cap, max_ratio, ratio_floor)
            found.append(HiddenMember(name, content, False, problem))
        position = data.find(_LOCAL, position + 4)
    return found
