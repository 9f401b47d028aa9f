"""Signatures: verified by dkimpy and by Perl's Mail::DKIM (over real DNS on loopback) for plain,
multipart, 8-bit and SMTPUTF8 mail; RSA, Ed25519 and both; over-signing; refusals."""

from __future__ import annotations

import base64
import hashlib
import random

import dkim
import pytest

from mailgw.dkim import keys, sign
from mailgw.dkim.errors import DkimRefused
from tests.dkim.conftest import (
    DOMAIN,
    MESSAGES,
    algorithm_of,
    dkimpy_verify,
    mail_dkim_verify,
    needs_nacl,
    opendkim_verify,
)


def _published(*pairs: tuple[str, keys.PrivateKey]) -> dict[str, str]:
    return {keys.record_name(DOMAIN, sel): keys.txt_record(algorithm_of(k), k)
            for sel, k in pairs}


def _signed(message: bytes, *pairs: tuple[str, keys.PrivateKey]) -> bytes:
    return sign.sign(message, DOMAIN, list(pairs))


def test_same_header_as_dkimpy_byte_for_byte(rsa_key, monkeypatch) -> None:
    # Our RSA path must be dkimpy's signer with only the private-key operation replaced.
    message = MESSAGES["multipart"]()
    include = sign.header_list(sign.parse(message)[0])
    monkeypatch.setattr(dkim.time, "time", lambda: 1_764_100_000)
    theirs = dkim.DKIM(message).sign(b"s1", DOMAIN.encode(), keys.private_pem(rsa_key),
                                     canonicalize=(b"relaxed", b"relaxed"),
                                     include_headers=include)
    ours = sign.sign(message, DOMAIN, [("s1", rsa_key)], now=1_764_100_000)
    assert ours == theirs + message


@pytest.mark.parametrize("message", [
    b"", b"\r\n", b"\r\nbody only\r\n", b"A: 1\r\n", b"A: 1", b"A: 1\r\n\r\n",
    b"A: 1\r\n\r\nbody\r\n\r\n", b"A: 1\r\n folded\r\nB: 2\r\n\r\nx\r\n",
    b"From x@y Thu\r\nA: 1\r\n\r\nb", b"A: 1\nB: 2\n\nlf body\n", b"A: 1\r\nB: 2\n\nmixed\r\n",
    b"A: 1\r\n\r\nlone\rcr\r\n",
])
def test_parse_is_dkimpys(message) -> None:
    assert sign.parse(message) == dkim.rfc822_parse(message)


@pytest.mark.parametrize("body", [
    b"", b"\r\n", b"\r\n\r\n", b"one line", b"one line\r\n", b"a\r\nb\r\n\r\n\r\n",
    b"tab\there\r\n", b"two  spaces\r\n", b"trailing space \r\n", b"trailing tab\t\r\n",
    b"ends in a space ", b"  leading\r\n", b" \r\n", b"mixed \t \tws  \r\n\r\n",
    "Tiếng Việt có dấu\r\n".encode(), b"x" * 2000 + b"\r\n" * 3,
])
def test_relaxed_body_is_dkimpys(body) -> None:
    # The fast path skips dkimpy's regex passes only where they change nothing.
    assert sign.relaxed_body(body) == sign.POLICY.canonicalize_body(body)


def test_large_bodies_are_hashed_in_pieces_as_dkimpy_hashes_them_whole() -> None:
    # Tiny pieces stand in for 1 MB ones: every cut (between CRLFs, inside runs of blank
    # lines, before a last line without CRLF) is met many times over.
    rng = random.Random(6376)
    parts = [b"a", b"xyz", b" ", b"  ", b"\t", b"\r\n", b"\r\n\r\n", b" \r\n",
             "đ".encode(), b"\r", b"\n"]
    for _ in range(4000):
        body = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 40)))
        whole = base64.b64encode(hashlib.sha256(sign.POLICY.canonicalize_body(body)).digest())
        for piece in (1, 2, 5, 13):
            assert sign.body_hash(body, piece) == whole, (piece, body)


@pytest.mark.parametrize("kind", sorted(MESSAGES))
@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
def test_dkimpy_verifies(kind, alg, rsa_key, ed_key) -> None:
    if alg == "ed25519":
        needs_nacl()
    key = rsa_key if alg == "rsa" else ed_key
    signed = _signed(MESSAGES[kind](), ("sel", key))
    assert dkimpy_verify(signed, _published(("sel", key))) == [True]


@pytest.mark.parametrize("kind", sorted(MESSAGES))
@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
async def test_mail_dkim_verifies_over_dns(kind, alg, rsa_key, ed_key, dns_zone,
                                           tmp_path) -> None:
    key = rsa_key if alg == "rsa" else ed_key
    server = await dns_zone(_published(("sel", key)))
    signed = _signed(MESSAGES[kind](), ("sel", key))
    results = await mail_dkim_verify(tmp_path, server.port, signed, ed25519=alg == "ed25519")
    assert results == ["pass"]
    assert ("sel._domainkey.phutho.gov.vn", "TXT") in server.queries


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_opendkim_verifies_dual_signatures(kind, rsa_key, ed_key, tmp_path) -> None:
    published = _published(("r1", rsa_key), ("e1", ed_key))
    signed = _signed(MESSAGES[kind](), ("r1", rsa_key), ("e1", ed_key))
    assert signed.count(b"DKIM-Signature:") == 2
    assert b"a=rsa-sha256" in signed and b"a=ed25519-sha256" in signed
    assert opendkim_verify(tmp_path, signed, published) == {"r1": "pass", "e1": "pass"}
    assert dkimpy_verify(signed, published)[0] is True  # the RSA one, on top


def test_opendkim_sees_a_tampered_body_and_subject(rsa_key, ed_key, tmp_path) -> None:
    published = _published(("r1", rsa_key), ("e1", ed_key))
    signed = _signed(MESSAGES["plain"](), ("r1", rsa_key), ("e1", ed_key))
    for tampered in (signed.replace(b"Bao cao dinh kem", b"Chuyen tien ngay"),
                     signed.replace(b"\r\n\r\nKinh", b"\r\nSubject: x\r\n\r\nKinh")):
        assert opendkim_verify(tmp_path, tampered, published) == {"r1": "fail", "e1": "fail"}


def test_header_list_oversigns_single_headers() -> None:
    include = sign.header_list(sign.parse(MESSAGES["multipart"]())[0])
    # Present once -> signed twice; absent -> signed once (no header may be added).
    for name in (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"mime-version",
                 b"content-type"):
        assert include.count(name) == 2, name
    assert include.count(b"reply-to") == 1
    assert include.count(b"content-transfer-encoding") == 0  # only on the parts here
    assert not set(include) & set(dkim.DKIM.SHOULD_NOT)


@pytest.mark.parametrize("added", [
    b"Subject: Khan: chuyen tien ngay\r\n",
    b"From: Chu tich <chutich@phutho.gov.vn>\r\n",
    b"To: other@example.com\r\n",
    b"Cc: leak@example.com\r\n",
    b"Reply-To: attacker@example.com\r\n",
    b"Content-Type: text/html\r\n",
])
def test_a_header_added_after_signing_breaks_the_signature(added, rsa_key) -> None:
    signed = _signed(MESSAGES["plain"](), ("sel", rsa_key))
    published = _published(("sel", rsa_key))
    assert dkimpy_verify(signed, published) == [True]
    head, sep, body = signed.partition(b"\r\n\r\n")
    for tampered in (head + b"\r\n" + added.rstrip(b"\r\n") + sep + body, added + signed):
        assert dkimpy_verify(tampered, published) == [False]


async def test_added_subject_fails_mail_dkim_too(rsa_key, dns_zone, tmp_path) -> None:
    server = await dns_zone(_published(("sel", rsa_key)))
    signed = _signed(MESSAGES["plain"](), ("sel", rsa_key))
    head, sep, body = signed.partition(b"\r\n\r\n")
    tampered = head + b"\r\nSubject: second" + sep + body
    [result] = await mail_dkim_verify(tmp_path, server.port, tampered)
    assert result.startswith("fail")


@pytest.mark.parametrize("header,why", [
    (b"From: other@phutho.gov.vn\r\n", "2 From headers"),
    (b"Subject: second subject\r\n", "2 Subject headers"),
])
def test_two_from_or_subject_refused(header, why, rsa_key) -> None:
    with pytest.raises(DkimRefused, match=why):
        _signed(header + MESSAGES["plain"](), ("sel", rsa_key))


def test_no_from_refused(rsa_key) -> None:
    message = MESSAGES["plain"]().replace(b"From: Chuyen Vien <chuyenvien@phutho.gov.vn>\r\n",
                                          b"")
    with pytest.raises(DkimRefused, match="no From"):
        _signed(message, ("sel", rsa_key))


def test_lf_message_gets_an_lf_header(rsa_key) -> None:
    message = MESSAGES["plain"]().replace(b"\r\n", b"\n")
    signed = _signed(message, ("sel", rsa_key))
    assert b"\r" not in signed
    assert dkimpy_verify(signed, _published(("sel", rsa_key))) == [True]


def test_no_length_tag_and_relaxed(rsa_key) -> None:
    signed = _signed(MESSAGES["plain"](), ("sel", rsa_key))
    tags = dkim.util.parse_tag_value(b"".join(signed.split(b"\r\n\r\n")[0].split(b"\r\n")[:7])
                                     .split(b":", 1)[1])
    assert b"l" not in tags
    assert tags[b"c"] == b"relaxed/relaxed"
