"""DMARC through `check_message`: pass by aligned SPF or DKIM, fail under p=reject, quarantine
and none, no record, temperror, organisational-domain fallback with sp=, strict alignment,
deterministic pct= sampling, and which temporary errors matter."""

from __future__ import annotations

import pytest

from mailgw.inbound import check_message
from mailgw.inbound.dmarc import aligned, org_domain, parse_record
from tests.inbound import zone as z
from tests.inbound.conftest import AUTHSERV, INTERNAL, message


@pytest.fixture
def dns(zone_factory, key):
    return zone_factory(z.records(key.record), servfail=z.SERVFAIL, silent=z.SILENT)


def check(dns, raw, *, ip=z.BAD_IP, mail_from="bounce@elsewhere.test", rand=lambda: 0.0,
          timeout=3.0):
    return check_message(raw, client_ip=ip, helo="mx.client.test", mail_from=mail_from,
                         authserv_id=AUTHSERV, internal_domains=INTERNAL,
                         resolver=dns.resolver(timeout=timeout), rand=rand)


def test_pass_by_aligned_spf(dns):
    v = check(dns, message(from_="<a@example.com>"), ip=z.GOOD_IP,
              mail_from="bounce@bounce.example.com")   # relaxed: same org domain
    assert (v.dmarc.result, v.dmarc.spf_aligned, v.dmarc.dkim_aligned) == ("pass", True, False)
    assert (v.action, v.temporary) == ("allow", False)


def test_pass_by_aligned_dkim_alone(dns, key):
    # Forwarded: the SPF of the forwarder fails, the author's signature survives.
    v = check(dns, key.sign(message(from_="<a@example.com>"), "example.com"),
              mail_from="a@example.com")
    assert v.spf.result == "fail"
    assert (v.dmarc.result, v.dmarc.dkim_aligned, v.action) == ("pass", True, "allow")


def test_unaligned_pass_is_not_enough(dns, key):
    # SPF passes for the envelope domain and DKIM for its own domain; neither is example.com.
    raw = key.sign(message(from_="<ceo@example.com>"), "phutho.gov.vn")
    v = check(dns, raw, ip="10.1.2.3", mail_from="x@phutho.gov.vn")
    assert (v.spf.result, v.dkim[0].result) == ("pass", "pass")
    assert (v.dmarc.result, v.dmarc.policy, v.action) == ("fail", "reject", "reject")
    assert v.reasons == ["dmarc_policy"]


@pytest.mark.parametrize(("domain", "policy", "action"), [
    ("example.com", "reject", "reject"),
    ("quarantine.example", "quarantine", "quarantine"),
    ("monitor.example", "none", "allow"),
])
def test_fail_applies_the_policy(dns, domain, policy, action):
    v = check(dns, message(from_=f"<a@{domain}>"), mail_from=f"a@{domain}")
    assert v.spf.result == "fail"
    assert (v.dmarc.result, v.dmarc.policy, v.dmarc.disposition) == ("fail", policy, policy)
    assert v.action == action
    assert f"dmarc=fail (p={policy} dis={policy}) header.from={domain}" in \
        v.authentication_results


def test_no_record_is_none(dns):
    v = check(dns, message(from_="<a@soft.example>"), mail_from="a@soft.example")
    assert (v.dmarc.result, v.action, v.temporary) == ("none", "allow", False)
    assert "dmarc=none header.from=soft.example" in v.authentication_results


def test_two_records_are_no_policy(dns):
    v = check(dns, message(from_="<a@twodmarc.example>"), mail_from="a@twodmarc.example")
    assert v.dmarc.result == "none"


def test_policy_lookup_failure_is_temporary(dns):
    v = check(dns, message(from_="<a@dmarcbroken.example>"), mail_from="x@elsewhere.test")
    assert (v.dmarc.result, v.temporary) == ("temperror", True)
    assert "dmarc=temperror" in v.authentication_results


def test_unknown_policy_does_not_matter_after_a_strict_pass(dns):
    v = check(dns, message(from_="<a@dmarcbroken.example>"), ip=z.GOOD_IP,
              mail_from="a@dmarcbroken.example")
    assert (v.dmarc.result, v.temporary) == ("pass", False)


def test_org_domain_fallback_uses_sp(dns):
    v = check(dns, message(from_="<a@sub.org.example>"), mail_from="a@sub.org.example")
    assert (v.dmarc.record_domain, v.dmarc.policy, v.action) == ("org.example", "quarantine",
                                                                 "quarantine")
    assert ("_dmarc.sub.org.example", "TXT") in dns.queries
    assert ("_dmarc.org.example", "TXT") in dns.queries


def test_org_domain_record_passes_an_aligned_subdomain(dns):
    v = check(dns, message(from_="<a@sub.org.example>"), ip=z.GOOD_IP,
              mail_from="a@org.example")
    assert (v.dmarc.result, v.dmarc.record_domain) == ("pass", "org.example")


def test_strict_alignment(dns):
    v = check(dns, message(from_="<a@strict.example>"), ip=z.GOOD_IP,
              mail_from="b@bounce.strict.example")
    assert v.spf.result == "pass"
    assert (v.dmarc.result, v.action) == ("fail", "reject")


@pytest.mark.parametrize(("draw", "sampled", "action"), [
    (0.10, True, "reject"),         # 10 < pct=30: the policy applies
    (0.29, True, "reject"),
    (0.30, False, "quarantine"),    # left out: the next softer policy (RFC 7489 §6.6.4)
    (0.95, False, "quarantine"),
])
def test_pct_sampling(dns, draw, sampled, action):
    v = check(dns, message(from_="<a@pct.example>"), mail_from="a@pct.example",
              rand=lambda: draw)
    assert (v.dmarc.result, v.dmarc.sampled, v.action) == ("fail", sampled, action)


def test_temperror_in_an_aligned_identity_is_temporary(dns, key):
    # The only identity that could align (the DKIM key of keyfail.example) cannot be read now.
    raw = key.sign(message(from_="<a@keyfail.example>"), "keyfail.example")
    v = check(dns, raw, mail_from="x@elsewhere.test")
    assert v.dkim[0].result == "temperror"
    assert (v.temporary, v.dmarc.result, v.dmarc.policy) == (True, "temperror", "reject")


def test_temperror_in_an_unaligned_identity_does_not_matter(dns):
    v = check(dns, message(from_="<a@example.com>"), mail_from="x@broken.example")
    assert v.spf.result == "temperror"
    assert (v.dmarc.result, v.temporary, v.action) == ("fail", False, "reject")


@pytest.mark.parametrize(("name", "org"), [
    ("a.b.phutho.gov.vn", "phutho.gov.vn"),
    ("phutho.gov.vn", "phutho.gov.vn"),
    ("gov.vn", "gov.vn"),
    ("mail.example.co.uk", "example.co.uk"),
    ("Mail.Example.COM.", "example.com"),
])
def test_org_domain(name, org):
    assert org_domain(name) == org


def test_alignment_modes():
    assert aligned("bounce.example.com", "example.com", "r")
    assert not aligned("bounce.example.com", "example.com", "s")
    assert not aligned("example.com.evil.test", "example.com", "r")
    assert not aligned("", "example.com", "r")


def test_record_parsing():
    r = parse_record("v=DMARC1; p=Quarantine; sp=bogus; adkim=s; pct=250", "x.test")
    assert r is not None
    assert (r.p, r.sp, r.adkim, r.aspf, r.pct) == ("quarantine", "quarantine", "s", "r", 100)
    assert parse_record("v=spf1 -all", "x.test") is None
    assert parse_record("v=DMARC1; p=rejekt", "x.test").p == "none"  # type: ignore[union-attr]
