"""Decisions of `check_message`: forged internal senders, look-alike domains with the warning
for the recipient, several From addresses, bounded time, and the header lines to prepend."""

from __future__ import annotations

import time
from email.header import decode_header, make_header

import pytest

from mailgw.inbound import check_message
from tests.inbound import zone as z
from tests.inbound.conftest import AUTHSERV, INTERNAL, message


@pytest.fixture
def dns(zone_factory, key):
    return zone_factory(z.records(key.record), servfail=z.SERVFAIL, silent=z.SILENT)


def check(dns, raw, *, ip=z.BAD_IP, mail_from="x@evil.test", timeout=3.0, budget=20.0,
          internal=INTERNAL):
    return check_message(raw, client_ip=ip, helo="mx.evil.test", mail_from=mail_from,
                         authserv_id=AUTHSERV, internal_domains=internal,
                         resolver=dns.resolver(timeout=timeout), budget=budget,
                         rand=lambda: 0.0)


@pytest.mark.parametrize(("from_", "mail_from"), [
    ("Chu tich UBND tinh <chutich@phutho.gov.vn>", "x@evil.test"),
    ("<chutich@phutho.gov.vn>", "chutich@phutho.gov.vn"),    # envelope forged too: SPF fails
    ("<vanthu@lamthao.phutho.gov.vn>", ""),                   # a subdomain, null sender
    ("<CHUTICH@PHUTHO.GOV.VN.>", "x@evil.test"),
])
def test_spoofed_internal_sender_is_quarantined(dns, from_, mail_from):
    v = check(dns, message(from_=from_), mail_from=mail_from)
    assert v.spoofed_internal_sender and not v.temporary
    assert (v.action, v.reasons) == ("quarantine", ["spoofed_internal_sender"])


def test_spoofed_internal_sender_with_another_domains_valid_signature(dns, key):
    raw = key.sign(message(from_="<chutich@phutho.gov.vn>"), "example.com")
    v = check(dns, raw, ip=z.GOOD_IP, mail_from="a@example.com")
    assert (v.spf.result, v.dkim[0].result) == ("pass", "pass")
    assert v.spoofed_internal_sender and v.action == "quarantine"


@pytest.mark.parametrize("how", ["spf", "dkim"])
def test_authentic_internal_sender_passes(dns, key, how):
    raw = message(from_="<vanthu@phutho.gov.vn>")
    if how == "dkim":
        v = check(dns, key.sign(raw, "phutho.gov.vn"), ip=z.BAD_IP, mail_from="f@fwd.test")
    else:
        v = check(dns, raw, ip=z.PROVINCE_IP, mail_from="vanthu@phutho.gov.vn")
    assert not v.spoofed_internal_sender
    assert (v.action, v.reasons, v.temporary) == ("allow", [], False)


def test_internal_sender_with_dns_trouble_is_temporary_not_quarantined(zone_factory, key):
    dns = zone_factory(z.records(key.record), servfail={"phutho.gov.vn"})
    v = check(dns, message(from_="<vanthu@phutho.gov.vn>"), ip=z.PROVINCE_IP,
              mail_from="vanthu@phutho.gov.vn")
    assert v.spf.result == "temperror"
    assert v.temporary and v.temporary_reason


@pytest.mark.parametrize(("ip", "dmarc", "action", "spoofed"), [
    (z.PROVINCE_IP, "pass", "allow", False),     # a strict pass passes under any policy
    (z.BAD_IP, "temperror", "quarantine", True),  # no alignment: forged whatever we publish
])
def test_internal_sender_needs_no_readable_dmarc_record_of_ours(zone_factory, key, ip, dmarc,
                                                                action, spoofed):
    dns = zone_factory(z.records(key.record), servfail={"_dmarc.phutho.gov.vn"})
    v = check(dns, message(from_="<vanthu@phutho.gov.vn>"), ip=ip,
              mail_from="vanthu@phutho.gov.vn")
    assert v.dmarc.result == dmarc
    assert (v.temporary, v.action, v.spoofed_internal_sender) == (False, action, spoofed)


@pytest.mark.parametrize("domain", [
    "phutho-gov.vn",
    "phuthogov.vn",
    "phuth0.gov.vn",
    "phutho.gov.vn.evil.com",
    "\u0440hutho.gov.vn",          # Cyrillic r (looks like p)
    "phuth\u043e.gov.vn",          # Cyrillic o
    "lamthao.phuth0.gov.vn",       # a subdomain of a look-alike
])
def test_lookalike_domain_is_flagged_with_a_warning(dns, domain):
    v = check(dns, message(from_=f"Van phong UBND <vanphong@{domain}>"))
    assert v.lookalike_domain and v.lookalike_of == "phutho.gov.vn"
    assert not v.spoofed_internal_sender
    assert (v.action, v.reasons) == ("flag", ["lookalike_domain"])
    assert "CẢNH BÁO" in v.warning and "WARNING" in v.warning
    assert "phutho.gov.vn" in v.warning


@pytest.mark.parametrize("domain", ["example.com", "hanoi.gov.vn", "gmail.com", "phutho.vn"])
def test_ordinary_domains_are_not_lookalikes(dns, domain):
    v = check(dns, message(from_=f"<a@{domain}>"))
    assert not v.lookalike_domain and v.warning == ""


def test_lookalike_that_fails_its_own_dmarc_gets_both_reasons_and_the_stronger_action(dns):
    v = check(dns, message(from_="<a@phuth0-gov.vn>"))
    assert (v.dmarc.result, v.dmarc.policy) == ("fail", "reject")
    assert (v.action, v.reasons) == ("reject", ["dmarc_policy", "lookalike_domain"])


def test_warning_header_line_decodes_to_the_text(dns):
    v = check(dns, message(from_="<a@phuth0.gov.vn>"))
    lines = v.header_lines()
    assert lines[0].startswith(b"Authentication-Results: " + AUTHSERV.encode() + b";")
    warning = lines[1].decode("ascii")
    assert warning.startswith("X-Mailgw-Warning: ") and warning.endswith("\r\n")
    assert all(len(line) <= 78 for line in warning.split("\r\n"))
    value = warning.split(":", 1)[1].replace("\r\n", "").strip()
    assert str(make_header(decode_header(value))) == v.warning


@pytest.mark.parametrize("from_header", [
    "<a@example.com>, <chutich@phutho.gov.vn>",
    "<a@example.com>\r\nFrom: <chutich@phutho.gov.vn>",
])
def test_several_from_domains_with_an_internal_one_are_quarantined(dns, from_header):
    v = check(dns, message(from_=from_header), ip=z.GOOD_IP, mail_from="a@example.com")
    assert v.dmarc.result == "permerror"
    assert v.spoofed_internal_sender and v.action == "quarantine"


def test_no_from_is_a_dmarc_permerror(dns):
    raw = b"To: <b@phutho.gov.vn>\r\nSubject: x\r\n\r\nbody\r\n"
    v = check(dns, raw)
    assert (v.dmarc.result, v.action, v.temporary) == ("permerror", "allow", False)


def test_every_lookup_is_bounded(dns, key):
    # Everything about slow.example goes unanswered: SPF, the DKIM key, the DMARC record.
    raw = key.sign(message(from_="<a@slow.example>"), "slow.example")
    start = time.monotonic()
    v = check(dns, raw, mail_from="a@slow.example", timeout=5.0, budget=0.6)
    assert time.monotonic() - start < 3
    assert v.temporary
    assert (v.spf.result, v.dkim[0].result, v.dmarc.result) == ("temperror",) * 3


def test_internal_domains_come_from_the_caller(dns):
    v = check(dns, message(from_="<a@example.com>"), ip=z.GOOD_IP, mail_from="a@example.com",
              internal=["example.com"])
    assert not v.spoofed_internal_sender and v.action == "allow"
    v = check(dns, message(from_="<a@examp1e.com>"), internal=["example.com"])
    assert v.lookalike_of == "example.com"


@pytest.mark.parametrize(("from_", "flagged"), [
    ('"chutich@phutho.gov.vn" <x@evil.test>', True),
    ('"Chu tich (chutich@lamthao.phutho.gov.vn)" <x@evil.test>', True),
    ("=?utf-8?b?Q2jhu6cgdOG7i2NoIDxjaHV0aWNoQHBodXRoby5nb3Yudm4+?= <x@evil.test>", True),
    ('"Chu tich UBND tinh" <x@evil.test>', False),
    ('"a@example.com" <x@evil.test>', False),
])
def test_internal_address_as_display_name_of_an_outside_address(dns, from_, flagged):
    v = check(dns, message(from_=from_))
    assert v.lookalike_domain is flagged
    assert (v.lookalike_of == "phutho.gov.vn") is flagged
    assert not v.spoofed_internal_sender


def test_idn_envelope_domain_is_checked_in_its_ascii_form(zone_factory, key):
    records = z.records(key.record)
    records[("xn--v-dng-zsa0284c.vn", "TXT")] = [f'"v=spf1 ip4:{z.SPF_NET} -all"']
    dns = zone_factory(records)
    v = check(dns, message(from_="<a@v\u00ed-d\u1ee5ng.vn>"), ip=z.GOOD_IP,
              mail_from="ng\u01b0\u1eddi@v\u00ed-d\u1ee5ng.vn")
    assert (v.spf.result, v.spf.domain) == ("pass", "xn--v-dng-zsa0284c.vn")
    assert v.from_domains == ["xn--v-dng-zsa0284c.vn"]
    assert v.dmarc.spf_aligned
