"""Stage `parse`: canonical line endings, then the header facts every later stage relies on.

Bare CR or LF is turned into CRLF here, before anything parses the message: Python's email
package splits header lines on a bare LF where SMTP does not, so a message must look the same to
every reader (the SMTP smuggling and header-injection family of attacks lives in that gap).
Two From fields, or none, are refused: which one would a reader believe?
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from mailgw.inbound.headers import field_name, split_header
from mailgw.pipeline.mail import CRLFBytes, Mail, is_canonical_crlf, is_large
from mailgw.pipeline.outcome import StageReject
from mailgw.smtp import replies

_BARE_NEWLINE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)


def canonical_crlf(raw: bytes) -> tuple[bytes, int]:
    """Every bare CR and bare LF becomes CRLF; returns the bytes and how many were fixed."""
    if is_canonical_crlf(raw):
        return raw, 0
    fixed, count = _BARE_NEWLINE.subn(b"\r\n", raw)
    return fixed, count


def strip_gateway_fields(raw: bytes) -> bytes:
    """`raw` without X-Mailgw-* header fields (the same object if it had none)."""
    fields, rest = split_header(raw)
    kept = [f for f in fields if not field_name(f).startswith("x-mailgw-")]
    return raw if len(kept) == len(fields) else b"".join(kept) + rest


def header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 2]


def run(mail: Mail) -> None:
    mail.raw, fixed = canonical_crlf(mail.raw)
    if fixed:
        mail.note("parse", "normalised", bare_newlines=fixed)
    # Only this gateway speaks in X-Mailgw-* fields: a client's own would pass for ours.
    stripped = strip_gateway_fields(mail.raw)
    if stripped is not mail.raw:
        mail.raw = stripped
        mail.note("parse", "removed X-Mailgw-* fields sent by the client")
    if not is_large(len(mail.raw)):
        mail.raw = CRLFBytes(mail.raw)  # canonical from here on (mailgw.pipeline.mail)
    headers = _HEADER_PARSER.parsebytes(header_block(mail.raw))
    from_fields = headers.get_all("From") or []
    if len(from_fields) > 1:
        raise StageReject(replies.TWO_FROM, "two From header fields")
    if not from_fields:
        raise StageReject(replies.NO_FROM, "no From header field")
    mail.header_from = [addr.lower() for _name, addr in getaddresses([str(from_fields[0])])
                        if addr]
    if not mail.header_from:
        raise StageReject(replies.format_reply(replies.UNPARSABLE, why="no address in From"),
                          "From without an address")
    mail.message_id = str(headers.get("Message-ID", "")).strip()
    mail.has_date = headers.get("Date") is not None
    mail.note("parse", "ok", message_id=mail.message_id)
