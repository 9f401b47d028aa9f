"""Header work: removing forged Authentication-Results with our authserv-id (and only those,
byte for byte), the Authentication-Results we write, and DKIM surviving both."""

from __future__ import annotations

import pytest

from mailgw.inbound import check_message, remove_ours
from mailgw.inbound.dkimcheck import check_dkim
from mailgw.inbound.dnslookup import Lookup
from mailgw.inbound.headers import authserv_id_of, pvalue, split_header
from tests.inbound import zone as z
from tests.inbound.conftest import AUTHSERV, INTERNAL, message

OTHERS = (b"Authentication-Results: mx.google.com;\r\n spf=pass smtp.mailfrom=a@example.com\r\n"
          b"Authentication-Results: mx.phutho.gov.vn.example.com; dkim=pass\r\n"
          b"X-Note: Authentication-Results: mx.phutho.gov.vn; dmarc=pass\r\n")


@pytest.mark.parametrize("forged", [
    b"Authentication-Results: mx.phutho.gov.vn; dmarc=pass header.from=phutho.gov.vn\r\n",
    b"authentication-results: MX.PhuTho.Gov.VN; spf=pass\r\n",
    b"Authentication-Results: (trust me) mx.phutho.gov.vn (really); dkim=pass\r\n",
    b"Authentication-Results: \"mx.phutho.gov.vn\"; spf=pass\r\n",
    b"Authentication-Results:\r\n\tmx.phutho.gov.vn. 1;\r\n spf=pass\r\n",
    b"Authentication-Results : mx.phutho.gov.vn;\r\n none\r\n",
])
def test_forged_results_with_our_id_are_removed_and_others_kept(forged):
    raw = message(extra=(OTHERS.decode() + forged.decode()))
    cleaned = remove_ours(raw, AUTHSERV)
    assert cleaned == message(extra=OTHERS.decode())


def test_a_forged_result_below_other_fields_and_several_of_them():
    forged = b"Authentication-Results: mx.phutho.gov.vn; spf=pass\r\n"
    raw = forged + b"Received: from a\r\n" + forged + message()
    assert remove_ours(raw, AUTHSERV) == b"Received: from a\r\n" + message()


def test_body_lines_that_look_like_headers_stay():
    raw = message(body="Authentication-Results: mx.phutho.gov.vn; spf=pass\r\n")
    assert remove_ours(raw, AUTHSERV) == raw


def test_lf_only_and_header_only_messages():
    raw = b"Authentication-Results: mx.phutho.gov.vn; spf=pass\nSubject: x\n\nbody\n"
    assert remove_ours(raw, AUTHSERV) == b"Subject: x\n\nbody\n"
    assert remove_ours(b"Authentication-Results: mx.phutho.gov.vn; x\r\n", AUTHSERV) == b""
    assert remove_ours(b"\r\nAuthentication-Results: mx.phutho.gov.vn; x\r\n", AUTHSERV) == \
        b"\r\nAuthentication-Results: mx.phutho.gov.vn; x\r\n"


def test_split_header_keeps_every_byte():
    raw = message(extra="X-Folded: a\r\n\tb\r\n")
    fields, rest = split_header(raw)
    assert b"".join(fields) + rest == raw
    assert fields[0] == b"X-Folded: a\r\n\tb\r\n" and rest.startswith(b"\r\nNoi")


@pytest.mark.parametrize(("value", "ident"), [
    (" mx.phutho.gov.vn; spf=pass", "mx.phutho.gov.vn"),
    (" mx.phutho.gov.vn 1; none", "mx.phutho.gov.vn"),
    (' (c) "MX.phutho.gov.vn" ; none', "mx.phutho.gov.vn"),
    (" (a (nested) comment) other.test; none", "other.test"),
    ("", ""),
])
def test_authserv_id_of(value, ident):
    assert authserv_id_of(value) == ident


@pytest.mark.parametrize(("text", "out"), [
    ("a@example.com", "a@example.com"),
    ("example.com", "example.com"),
    ("Tq+CtT/y=", "Tq+CtT/y="),
    ("two words", '"two words"'),
    ('say "hi"; x\r\n', '"say \\"hi\\"; x"'),
])
def test_pvalue(text, out):
    assert pvalue(text) == out


def test_prepended_header_and_removal_keep_the_signature_valid(zone_factory, key):
    dns = zone_factory(z.records(key.record))
    forged = "Authentication-Results: mx.phutho.gov.vn; dmarc=pass\r\n"
    raw = forged.encode() + key.sign(message(from_="<a@example.com>"), "example.com")
    v = check_message(raw, client_ip=z.BAD_IP, helo="h.test", mail_from="a@example.com",
                      authserv_id=AUTHSERV, internal_domains=INTERNAL,
                      resolver=dns.resolver(), rand=lambda: 0.0)
    out = v.apply(raw, AUTHSERV)
    assert out.startswith(b"Authentication-Results: mx.phutho.gov.vn;\r\n spf=fail")
    assert out.count(b"Authentication-Results:") == 1
    [again] = check_dkim(out, Lookup(dns.resolver(), 5))
    assert again.result == "pass"
    assert v.authentication_results == (
        "Authentication-Results: mx.phutho.gov.vn;\r\n"
        " spf=fail smtp.mailfrom=a@example.com;\r\n"
        f" dkim=pass header.d=example.com header.s=sel header.b={v.dkim[0].b[:8]};\r\n"
        " dmarc=pass (p=reject dis=none) header.from=example.com")


def test_results_for_a_failing_signature_carry_a_reason(zone_factory, key):
    dns = zone_factory(z.records(key.record))
    raw = key.sign(message(from_="<a@example.com>"), "example.com").replace(b"Noi", b"Moi")
    v = check_message(raw, client_ip=z.BAD_IP, helo="h.test", mail_from="",
                      authserv_id=AUTHSERV, internal_domains=INTERNAL,
                      resolver=dns.resolver(), rand=lambda: 0.0)
    assert 'dkim=fail reason="body hash mismatch' in v.authentication_results
    assert "spf=none smtp.helo=h.test" in v.authentication_results
