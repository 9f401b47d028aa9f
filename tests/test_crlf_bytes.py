"""CRLFBytes carries "every CR and LF is in a CRLF pair" from the parse stage to delivery: it
must appear only where that is true, and the bytes must stay the same bytes."""

from __future__ import annotations

from mailgw.dkim import keys, sign
from mailgw.pipeline.mail import (
    LARGE_MESSAGE_BYTES,
    CRLFBytes,
    Mail,
    SessionInfo,
    is_canonical_crlf,
)
from mailgw.pipeline.stages import parse

RAW = (b"From: a@phutho.gov.vn\r\nTo: b@example.org\r\nSubject: x\r\n\r\n"
       b"line one\r\nline two\r\n")


def _mail(raw: bytes) -> Mail:
    return Mail(SessionInfo(listener="submission"), "a@phutho.gov.vn", ["b@example.org"], raw)


def test_the_parse_stage_marks_a_small_message_it_made_canonical() -> None:
    mail = _mail(RAW.replace(b"line one\r\n", b"line one\n"))  # a bare LF, fixed by parse
    parse.run(mail)
    assert type(mail.raw) is CRLFBytes
    assert mail.raw == RAW
    assert is_canonical_crlf(bytes(mail.raw))


def test_a_large_message_is_not_copied_to_be_marked() -> None:
    mail = _mail(RAW + (b"x" * 998 + b"\r\n") * (LARGE_MESSAGE_BYTES // 1000 + 1))
    parse.run(mail)
    assert type(mail.raw) is bytes


def test_stored_bytes_are_marked_only_if_every_added_line_is_canonical() -> None:
    mail = _mail(RAW)
    parse.run(mail)
    mail.prepend.append(b"Received: from client by gw\r\n")
    stored = mail.stored_bytes()
    assert type(stored) is CRLFBytes and stored == b"Received: from client by gw\r\n" + RAW
    mail.prepend.append(b"X-Odd: bare\nLF\r\n")  # an added line with a bare LF
    stored = mail.stored_bytes()
    assert type(stored) is bytes and not is_canonical_crlf(stored)


def test_signed_bytes_stay_marked() -> None:
    mail = _mail(RAW)
    parse.run(mail)
    key = keys.generate("rsa")
    signed = sign.sign(mail.raw, "phutho.gov.vn", [("sel", key)], now=1)
    assert type(signed) is CRLFBytes
    assert signed == sign.sign(bytes(mail.raw), "phutho.gov.vn", [("sel", key)], now=1)
