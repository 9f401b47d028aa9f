"""Bytes to text and text to lines: charset decoding with fallbacks, control-character removal.

Used for every text/plain part, HTML part, and text-like file. No Vietnamese normalisation here
(NFC, tone placement, dashes): the classifiers do that.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from functools import partial
from itertools import islice

# C0 controls except tab, DEL, C1 controls, and zero-width characters used to split words
# so that a DLP keyword no longer matches.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
# The ASCII ones that can stay inside a line once str.splitlines() has split the text at its
# line breaks (VT, FF, CR, FS, GS, RS are breaks).
_ASCII_CONTROL_IN_LINE = bytes([*range(0x00, 0x09), *range(0x0E, 0x1C), 0x1F, 0x7F])


def known_charset(name: str | None) -> str | None:
    """The Python codec name for a declared charset, or None when unknown or absent."""
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip('"').lower()).name
    except (LookupError, ValueError):
        return None


def decode_text(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode with the declared charset, else utf-8, else windows-1258; never fails.

    Returns the text and whether a fallback was needed (the declared charset was wrong or unknown).
    """
    codec = known_charset(charset)
    # A byte-order mark says more than a missing or wrong label.
    for bom, bom_codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                           (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(bom_codec), False
            except UnicodeDecodeError:
                break
    tried: list[str] = []
    for name in (codec, "utf-8", "cp1258"):
        if name is None or name in tried:
            continue
        tried.append(name)
        try:
            return data.decode(name), name != codec
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(codec or "utf-8", errors="replace"), True


def clean(text: str) -> str:
    """Remove control and zero-width characters (keeps tabs and line breaks' effect elsewhere)."""
    return _CONTROL.sub("", text)


def _clean_line(line: str) -> str:
    # Every character _CONTROL removes is unprintable (Cc or Cf): a printable line has none.
    return line if line.isprintable() else _CONTROL.sub("", line)


def to_lines(text: str, limit: int = 200_000) -> list[str]:
    """Split text into cleaned lines, dropping blank ones, keeping at most `limit` lines.

    Lines end at CR LF, LF, CR, VT, FF, FS, GS, RS, NEL, LS and PS (`str.splitlines()`).
    """
    parts: Iterable[str] = text.splitlines()
    if not text.isascii():
        parts = map(_clean_line, parts)
    else:
        data = text.encode("ascii")
        if len(data.translate(None, _ASCII_CONTROL_IN_LINE)) != len(data):
            # bytes.translate counts them in C, far faster than a regex over the text.
            parts = map(partial(_CONTROL.sub, ""), parts)
    # rstrip() leaves "" exactly when the line was blank.
    return list(islice(filter(None, map(str.rstrip, parts)), max(limit, 1)))
