"""Header work for the inbound checks: reading header fields from raw bytes, removing forged
`Authentication-Results` with our authserv-id (RFC 8601 §5), and writing our own header lines.

The raw bytes are never re-serialised by the email package: fields are cut out of the header
block as they are, so every other byte (and so every DKIM signature further on) stays intact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.header import Header

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+(@[A-Za-z0-9.-]+)?$")


def split_header(raw: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folded lines and line ends) and the rest (blank line and
    body) of `raw`."""
    if raw.startswith((b"\r\n", b"\n")):
        return [], raw
    m = _HEADER_END.search(raw)
    # The cut is after the last field's own line end: the blank line starts `rest`.
    cut = raw.index(b"\n", m.start()) + 1 if m else len(raw)
    head, rest = raw[:cut], raw[cut:]
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return fields, rest


def field_name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def field_value(field: bytes) -> str:
    """The unfolded value, UTF-8 (RFC 6532) with anything undecodable replaced."""
    value = field.split(b":", 1)[1] if b":" in field else b""
    return re.sub(r"\r?\n(?=[ \t])", "", value.decode("utf-8", "replace")).strip()


def values(raw: bytes, name: str) -> list[str]:
    """Every value of header field `name` (case-insensitive), in order."""
    fields, _ = split_header(raw)
    return [field_value(f) for f in fields if field_name(f) == name.lower()]


def _strip_comments(text: str) -> str:
    out, depth, i = [], 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and depth:
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(c)
        i += 1
    return "".join(out)


def authserv_id_of(value: str) -> str:
    """The authserv-id of an Authentication-Results value (lower case, no final dot)."""
    head = _strip_comments(value).split(";", 1)[0].strip()
    if head.startswith('"'):
        m = re.match(r'"((?:[^"\\]|\\.)*)"', head)
        ident = re.sub(r"\\(.)", r"\1", m.group(1)) if m else head.strip('"')
    else:
        ident = head.split()[0] if head.split() else ""
    return ident.lower().rstrip(".")


def remove_ours(raw: bytes, authserv_id: str) -> bytes:
    """`raw` without the Authentication-Results fields that claim our authserv-id (they came
    from outside, so they are forged); every other byte is kept as it was."""
    ours = authserv_id.lower().rstrip(".")
    fields, rest = split_header(raw)
    kept = [f for f in fields if not (field_name(f) == "authentication-results"
                                      and authserv_id_of(field_value(f)) == ours)]
    if len(kept) == len(fields):
        return raw
    return b"".join(kept) + rest


def pvalue(text: str) -> str:
    """An RFC 8601 property value: as it is when safe, else a quoted-string."""
    text = "".join(c for c in text if c >= " " and c != "\x7f")
    if _SAFE_VALUE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authentication_results(authserv_id: str, results: Iterable[str]) -> str:
    """`Authentication-Results: <id>;` with one result per folded line (no final CRLF)."""
    parts = list(results) or ["none"]
    return f"Authentication-Results: {pvalue(authserv_id)};\r\n " + ";\r\n ".join(parts)


def encoded_field(name: str, text: str) -> str:
    """`Name: text` with non-ASCII text as RFC 2047 UTF-8 words, folded (no final CRLF)."""
    if text.isascii():
        return f"{name}: {text}"
    encoded = Header(text, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}"
