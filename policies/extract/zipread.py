"""Reading zip members in chunks under a size and ratio cap.

Used for archives and for the XML inside office files alike, so that no member is ever inflated
in memory beyond the limits, whatever sizes its header declares.
"""

from __future__ import annotations

import contextlib
import zipfile

_CHUNK = 64 * 1024


class LimitExceeded(Exception):
    """A member would inflate beyond the size cap or the compression-ratio cap."""


def read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, max_ratio: int, ratio_floor: int
) -> bytes:
    """Inflate one member, raising LimitExceeded as soon as it passes `cap` bytes or the ratio."""
    compressed = max(info.compress_size, 1)
    if info.file_size > cap:
        raise LimitExceeded(f"{info.file_size} bytes declared, cap {cap}")
    if info.file_size > ratio_floor and info.file_size / compressed > max_ratio:
        raise LimitExceeded(f"ratio {info.file_size // compressed}:1 declared")
    out = bytearray()
    with zf.open(info) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if len(out) > cap:
                raise LimitExceeded(f"more than {cap} bytes inflated")
            if len(out) > ratio_floor and len(out) / compressed > max_ratio:
                raise LimitExceeded(f"ratio above {max_ratio}:1")
    return bytes(out)


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name; names without the UTF-8 flag are often UTF-8 anyway (7-Zip, macOS)."""
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("utf-8")
    return name
