"""DKIM with dkimpy, keys served by the test DNS server: pass, fail (body or signed header
altered), none, permerror (no key, malformed signature), temperror, several signatures."""

from __future__ import annotations

import pytest

from mailgw.inbound.dkimcheck import check_dkim
from mailgw.inbound.dnslookup import Lookup
from tests.inbound import zone as z
from tests.inbound.conftest import message


@pytest.fixture
def dns(zone_factory, key):
    return zone_factory(z.records(key.record), servfail=z.SERVFAIL, silent=z.SILENT)


def _check(dns, raw, timeout=3.0):
    return check_dkim(raw, Lookup(dns.resolver(timeout=timeout), 10))


def test_pass(dns, key):
    [r] = _check(dns, key.sign(message(), "example.com"))
    assert (r.result, r.domain, r.selector) == ("pass", "example.com", "sel")
    assert len(r.b) >= 8


def test_body_altered_fails(dns, key):
    raw = key.sign(message(body="So tien: 1.000.000 dong\r\n"), "example.com")
    [r] = _check(dns, raw.replace(b"1.000.000", b"9.000.000"))
    assert r.result == "fail" and "body hash" in r.reason


def test_signed_header_altered_fails(dns, key):
    raw = key.sign(message(subject="Hop giao ban"), "example.com")
    [r] = _check(dns, raw.replace(b"Hop giao ban", b"Chuyen tien gap"))
    assert r.result == "fail"


def test_wrong_key_fails(dns, other_key):
    [r] = _check(dns, other_key.sign(message(), "example.com"))
    assert r.result == "fail"


def test_unsigned_is_none(dns):
    assert _check(dns, message()) == []


@pytest.mark.parametrize(("domain", "result"), [
    ("nokey.example", "permerror"),
    ("broken.example", "temperror"),
    ("slow.example", "temperror"),
])
def test_key_lookup_outcomes(dns, key, domain, result):
    [r] = _check(dns, key.sign(message(), domain), timeout=0.5)
    assert (r.result, r.domain) == (result, domain)


def test_malformed_signature_is_permerror(dns):
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n" + message()
    [r] = _check(dns, raw)
    assert r.result == "permerror"


def test_every_signature_has_its_result(dns, key, other_key):
    raw = key.sign(message(), "example.com")
    raw = other_key.sign(raw, "phutho.gov.vn")     # phutho.gov.vn publishes `key`, not this
    raw = key.sign(raw, "phutho.gov.vn")
    results = [(r.result, r.domain) for r in _check(dns, raw)]
    assert results == [("pass", "phutho.gov.vn"), ("fail", "phutho.gov.vn"),
                       ("pass", "example.com")]


def test_signatures_past_the_limit_are_not_checked(dns, key):
    from mailgw.inbound.dkimcheck import MAX_SIGNATURES

    raw = message()
    for _ in range(MAX_SIGNATURES + 3):
        raw = key.sign(raw, "example.com")
    results = _check(dns, raw)
    assert [r.result for r in results] == ["pass"] * MAX_SIGNATURES + ["permerror"]
    assert results[-1].reason == "3 more signatures not checked"
