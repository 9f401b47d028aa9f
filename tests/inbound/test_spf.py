"""SPF through pyspf with its DNS on our bounded resolver: pass, fail, softfail, none,
permerror, temperror (server failure and timeout, also inside an include), and the HELO identity
for the null sender."""

from __future__ import annotations

import time

import pytest

from mailgw.inbound.dnslookup import Lookup
from mailgw.inbound.spfcheck import check_spf
from tests.inbound import zone as z


@pytest.fixture
def dns(zone_factory, key):
    return zone_factory(z.records(key.record), servfail=z.SERVFAIL, silent=z.SILENT)


@pytest.mark.parametrize(("ip", "mail_from", "result"), [
    (z.GOOD_IP, "a@example.com", "pass"),
    (z.BAD_IP, "a@example.com", "fail"),
    (z.BAD_IP, "a@soft.example", "softfail"),
    (z.BAD_IP, "a@nospf.example", "none"),
    (z.BAD_IP, "a@nowhere.example", "none"),      # NXDOMAIN
    (z.BAD_IP, "a@broken.example", "temperror"),  # SERVFAIL
    (z.BAD_IP, "a@slow.example", "temperror"),    # no answer: timeout
    (z.BAD_IP, "a@include.example", "temperror"),  # the include times out
    (z.BAD_IP, "a@phuth0.gov.vn", "pass"),         # +all: SPF alone proves little
    ("not-an-ip", "a@example.com", "permerror"),
])
def test_spf_results(dns, ip, mail_from, result):
    # Generous timeouts where an answer comes; short ones where the server stays silent.
    timeout = 0.5 if mail_from.endswith(("slow.example", "include.example")) else 3.0
    r = check_spf(Lookup(dns.resolver(timeout=timeout), 10), ip, mail_from, "mx.client.test")
    assert (r.result, r.scope, r.domain) == (result, "mailfrom", mail_from.split("@")[1])


def test_null_sender_checks_the_helo_name(dns):
    r = check_spf(Lookup(dns.resolver(), 10), z.GOOD_IP, "", "helo.example")
    assert (r.result, r.scope, r.identity, r.domain) == ("pass", "helo", "helo.example",
                                                         "helo.example")


def test_every_lookup_went_to_the_test_server(dns):
    check_spf(Lookup(dns.resolver(), 10), z.GOOD_IP, "a@example.com", "h.test")
    assert ("example.com", "TXT") in dns.queries


def test_the_budget_bounds_the_whole_check(dns):
    # Each lookup alone could wait 5 s; the budget of 0.4 s ends the check first.
    start = time.monotonic()
    r = check_spf(Lookup(dns.resolver(timeout=5), 0.4), z.BAD_IP, "a@slow.example", "h.test")
    assert r.result == "temperror"
    assert time.monotonic() - start < 2
