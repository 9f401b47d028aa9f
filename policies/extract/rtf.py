"""Plain text of RTF: the body of Outlook TNEF messages and .rtf attachments.

A small tokenizer, not a renderer: it keeps the characters a reader sees (\\'hh in the document's
code page, \\uN Unicode), turns paragraph, line and cell ends into line breaks, and skips the
destinations that hold no visible text (font and colour tables, pictures, field instructions,
every \\* ignorable destination).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # control word with its optional argument
    rb"|\\'([0-9a-fA-F]{2})"  # a byte in the document's code page
    rb"|\\([^a-zA-Z])"  # control symbol
    rb"|([{}])"  # group
    rb"|([^\\{}\r\n]+)"  # text
    rb"|[\r\n]+"  # line breaks in the source mean nothing
)
_SKIP = frozenset({
    b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"object", b"fldinst",
    b"themedata", b"colorschememapping", b"datastore", b"latentstyles", b"listtable",
    b"listoverridetable", b"rsidtbl", b"generator", b"xmlnstbl", b"mmathPr", b"filetbl",
    b"revtbl", b"bkmkstart", b"bkmkend", b"xe", b"tc", b"template", b"operator",
})
_BREAKS = frozenset({b"par", b"line", b"row", b"cell", b"sect", b"page", b"nestcell"})
_CHARS = {b"tab": "\t", b"emdash": "\u2014", b"endash": "\u2013", b"lquote": "\u2018",
          b"rquote": "\u2019", b"ldblquote": "\u201c", b"rdblquote": "\u201d", b"bullet": "\u2022"}


def rtf_text(data: bytes, max_chars: int = 20_000_000) -> str:
    """The visible text of an RTF document, with a line break per paragraph, line and cell."""
    codepage = "cp1252"
    out: list[str] = []
    pending = bytearray()  # \\'hh bytes waiting to be decoded together (multi-byte code pages)
    stack: list[tuple[bool, int]] = []
    skipping, uc, to_skip = False, 1, 0
    group_start = False
    size = 0

    def flush() -> None:
        if pending:
            out.append(pending.decode(codepage, errors="replace"))
            pending.clear()

    for match in _TOKEN.finditer(data):
        word, arg, hexbyte, symbol, brace, text = match.groups()
        if brace == b"{":
            stack.append((skipping, uc))
            group_start = True
            continue
        if brace == b"}":
            flush()
            skipping, uc = stack.pop() if stack else (False, 1)
            group_start = False
            continue
        first, group_start = group_start, False
        if word is not None:
            if word in _SKIP or (first and word == b"*"):
                skipping = True
            if skipping:
                continue
            if word == b"ansicpg" and arg:
                codepage = f"cp{int(arg)}"
                try:
                    b"".decode(codepage)
                except LookupError:
                    codepage = "cp1252"
            elif word == b"uc" and arg:
                uc = max(0, int(arg))
            elif word == b"u" and arg:
                flush()
                value = int(arg)
                out.append(chr(value + 65536 if value < 0 else value))
                to_skip = uc
            elif word in _BREAKS:
                flush()
                out.append("\n")
            elif word in _CHARS:
                flush()
                out.append(_CHARS[word])
            continue
        if symbol is not None:
            if symbol == b"*" and first:
                skipping = True
            elif not skipping:
                if symbol in (b"\\", b"{", b"}"):
                    flush()
                    out.append(symbol.decode())
                elif symbol == b"~":
                    out.append("\u00a0")
                elif symbol == b"_":
                    out.append("-")
                elif symbol in (b"\n", b"\r"):
                    flush()
                    out.append("\n")
            continue
        if skipping:
            continue
        if hexbyte is not None:
            if to_skip:
                to_skip -= 1
            else:
                pending.append(int(hexbyte, 16))
            continue
        if text:
            if to_skip:
                cut = min(to_skip, len(text))
                text, to_skip = text[cut:], to_skip - cut
            if text:
                flush()
                out.append(text.decode(codepage, errors="replace"))
                size += len(text)
                if size > max_chars:
                    break
    flush()
    return "".join(out)
