"""`InboundChecker.from_config`: the settings come from [mx] and [gateway]."""

from __future__ import annotations

from mailgw.config import load
from mailgw.inbound import InboundChecker
from tests.inbound import zone as z
from tests.inbound.conftest import message


def test_settings_from_the_configuration(tmp_path):
    f = tmp_path / "gw.toml"
    f.write_text('[gateway]\nhostname = "gw1.phutho.gov.vn"\n'
                 'domains = ["phutho.gov.vn", "hoi.vn"]\n'
                 "[mx]\ndns_timeout = 1.5\nauth_timeout = 7.0\n", encoding="utf-8")
    checker = InboundChecker.from_config(load(f, environ={}))
    assert checker.authserv_id == "gw1.phutho.gov.vn"    # empty mx.authserv_id: the host name
    assert checker.internal_domains == ["phutho.gov.vn", "hoi.vn"]
    assert (checker.resolver.lifetime, checker.budget) == (1.5, 7.0)
    cfg = load(f, environ={"MAILGW_MX__AUTHSERV_ID": "mx.phutho.gov.vn"})
    assert InboundChecker.from_config(cfg).authserv_id == "mx.phutho.gov.vn"


def test_check_and_remove_with_bound_settings(tmp_path, monkeypatch, zone_factory, key):
    monkeypatch.chdir(tmp_path)  # no ./mailgw.toml: the embedded defaults
    dns = zone_factory(z.records(key.record))
    cfg = load(None, environ={"MAILGW_MX__AUTHSERV_ID": "mx.phutho.gov.vn"})
    checker = InboundChecker.from_config(cfg, resolver=dns.resolver(timeout=3.0))
    raw = b"Authentication-Results: mx.phutho.gov.vn; dmarc=pass\r\n" + message(
        from_="<chutich@phutho.gov.vn>")
    v = checker.check(raw, client_ip=z.BAD_IP, helo="h.test", mail_from="x@evil.test")
    assert v.action == "quarantine" and v.spoofed_internal_sender
    assert b"Authentication-Results" not in checker.remove_ours(raw)
