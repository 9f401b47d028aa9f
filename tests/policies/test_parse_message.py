"""parse_message reads a single-part message without sending its body through the stdlib
parser: the message object must be exactly what the parser makes, for any bytes."""

from __future__ import annotations

import random
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from policies.extract import mime
from policies.extract.mime import parse_message

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
PARSER = BytesParser(policy=compat32)  # not mime._PARSER: the spy below watches that one


def shape(msg: Message) -> Any:
    """Everything of a parsed message the MIME walk can see."""
    payload = msg.get_payload()
    return (
        msg.get_unixfrom(), list(msg.raw_items()), [type(d).__name__ for d in msg.defects],
        msg.get_default_type(), msg.preamble, msg.epilogue, msg.is_multipart(),
        [shape(p) for p in payload] if isinstance(payload, list) else payload,
    )


def same_as_parser(raw: bytes) -> None:
    assert shape(parse_message(raw)) == shape(PARSER.parsebytes(raw)), raw[:300]


HEADERS = [
    b"From: =?utf-8?b?Tmd1eeG7hW4=?= <a@phutho.gov.vn>", b"To: b@gmail.com",
    b"Subject: T\xe1\xbb\x9d tr\xc3\xacnh", b"Subject: folded", b"\tcontinued line",
    b"Content-Type: text/plain; charset=utf-8", b"Content-Type: text/html",
    b"Content-Type: multipart/mixed; boundary=XX", b"Content-Type: multipart/mixed",
    b"Content-Type: message/rfc822", b"Content-Type: message/delivery-status",
    b"Content-Type: application/pdf", b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable", b"From nobody Mon Jan  1 00:00:00 2026",
    b"not a header line", b" leading space", b"X-Empty:", b"Bad Name: value",
]
BREAKS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]
BODY_LINES = [b"Noi dung van ban.", b"--XX", b"--XX--", b"", b".", b"From: inner@x.org",
              b"Content-Type: text/plain", b"SGVsbG8gd29ybGQ=", b"=C3=A1 soft break=",
              b"\xc4\x91\xe1\xbb\x99c l\xe1\xba\xadp", b"\x00\x01 control"]


def random_message(rng: random.Random) -> bytes:
    # Half of them plain single-part mail as the gateway stores it (CRLF only), half anything.
    messy = rng.random() < 0.5
    breaks, headers = (BREAKS, HEADERS) if messy else ([b"\r\n"], HEADERS[:7])
    head = b"".join(rng.choice(headers) + rng.choice(breaks)
                    for _ in range(rng.randint(0, 6)))
    blank = rng.choice([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\r\n", b""])
    body = b"".join(rng.choice(BODY_LINES) + rng.choice(breaks)
                    for _ in range(rng.randint(0, 8)))
    return head + blank + body


def test_random_messages_read_as_the_parser_reads_them() -> None:
    rng = random.Random(4279)
    short = 0
    # A spy on the stdlib parser (it still does all the work): a message read the short way
    # went through it once, header block only.
    with mock.patch.object(mime._PARSER, "parsebytes", wraps=mime._PARSER.parsebytes) as spy:
        for _ in range(4000):
            raw = random_message(rng)
            spy.reset_mock()
            same_as_parser(raw)
            calls = spy.call_args_list
            short += len(calls) == 1 and calls[0].kwargs.get("headersonly") is True
    assert 500 < short < 3500, short  # both ways are exercised


@pytest.mark.parametrize("raw", [
    b"Subject: x\r\n\r\nbody\r\n",
    b"Subject: x\r\n\r\n",
    b"\r\n\r\nbody only\r\n",
    b"Subject: x\r\nno blank line at all\r\n",
    b"Subject: x\n\nbare LF blank line\r\n\r\nlater\r\n",
    b"Subject: x\r\r\n\r\nCR before the blank line\r\n",
    b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\npart\r\n--B--\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n",
    b"X: a\r\nbroken header\r\n\r\nbody\r\n",
    b"Subject: caf\xc3\xa9\r\n\r\n\xff\xfe raw 8-bit body\r\n",
])
def test_edge_cases_read_as_the_parser_reads_them(raw: bytes) -> None:
    same_as_parser(raw)


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
def test_corpus_messages_read_as_the_parser_reads_them() -> None:
    files = sorted(CORPUS.glob("*.eml"))
    assert files
    for path in files:
        same_as_parser(path.read_bytes())
