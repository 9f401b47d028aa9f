"""End to end through the MX listener: mail from the internet for internal domains only."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from sqlalchemy import text

from tests.e2e.harness import Gateway, make_config, parse, running_sink

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def gateway(tmp_path):
    with running_sink() as (sink, port):
        config = make_config(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", 1,
                             MAILGW_DELIVERY__ROUTES=f'{{"phutho.gov.vn" = '
                                                     f'"smtp:[127.0.0.1]:{port}"}}')
        gw = Gateway(config).start()
        try:
            yield gw, sink
        finally:
            gw.stop()


def inbound(to: str = "vanthu@phutho.gov.vn", sender: str = "doitac@example.org") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Công văn đến"
    msg.set_content("Kính gửi Văn phòng UBND tỉnh.\n")
    return msg.as_bytes(policy=SMTP)


def test_mx_offers_starttls_but_no_auth(gateway) -> None:
    gw, _ = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.ehlo("mx.example.org")
        assert "starttls" in c.esmtp_features
        assert "auth" not in c.esmtp_features
        c.starttls(context=gw.client_tls())
        c.ehlo("mx.example.org")
        assert "auth" not in c.esmtp_features


def test_mx_accepts_internal_domains_and_subdomains_and_delivers_by_route(gateway) -> None:
    gw, sink = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.sendmail("doitac@example.org",
                   ["vanthu@phutho.gov.vn", "ubnd@LamThao.Phutho.gov.vn"], inbound())
    mail_from, rcpts, raw = sink.wait_for(1)[0]
    assert mail_from == "doitac@example.org"
    assert sorted(rcpts) == ["ubnd@lamthao.phutho.gov.vn", "vanthu@phutho.gov.vn"]
    assert b"with ESMTP id" in raw  # our Received line: no TLS, no AUTH


@pytest.mark.parametrize("rcpt", ["victim@example.org", "x@xphutho.gov.vn",
                                  "x@phutho.gov.vn.evil.com", "x%example.org@phutho.gov.vn"])
def test_mx_never_relays(gateway, rcpt) -> None:
    gw, sink = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.ehlo("mx.example.org")
        c.mail("spammer@example.net")
        code, reply = c.rcpt(rcpt)
    assert code in (550, 553)
    if code == 550:
        assert reply.startswith(b"5.7.1")
    assert sink.messages == []


def test_mx_accepts_the_null_sender_of_a_bounce(gateway) -> None:
    gw, sink = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.ehlo("mx.example.org")
        assert c.docmd("MAIL FROM:<>")[0] == 250
        assert c.rcpt("vanthu@phutho.gov.vn")[0] == 250
        code, _ = c.data(inbound(sender="MAILER-DAEMON@example.org"))
        assert code == 250
    mail_from, _, _ = sink.wait_for(1)[0]
    assert mail_from == "<>"  # aiosmtpd's spelling of the null sender the gateway relayed


# -- inbound authentication through the real listener, with a real DNS server on 127.0.0.1 ----

@pytest.fixture
def zoned_gateway(tmp_path):
    from tests.inbound.conftest import Zone

    zone = Zone({
        ("example.org", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
        ("_dmarc.example.org", "TXT"): ['"v=DMARC1; p=reject"'],
        ("evil.test", "TXT"): ['"v=spf1 -all"'],
        ("phutho-gov.vn", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
        ("_dmarc.phutho.gov.vn", "TXT"): ['"v=DMARC1; p=reject"'],
    }, servfail={"broken.test", "_dmarc.broken.test"})
    with running_sink() as (sink, port):
        config = make_config(
            tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", 1,
            MAILGW_DELIVERY__ROUTES=f'{{"phutho.gov.vn" = "smtp:[127.0.0.1]:{port}"}}',
            MAILGW_GATEWAY__NAMESERVERS=f'["127.0.0.1:{zone.server.port}"]',
            MAILGW_MX__DNS_TIMEOUT="1.0", MAILGW_MX__AUTHSERV_ID='"mx.phutho.gov.vn"')
        gw = Gateway(config).start()
        try:
            yield gw, sink
        finally:
            gw.stop()
            zone.close()


def _send(gw: Gateway, mail_from: str, header_from: str, extra: bytes = b"") -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=30) as c:
        c.ehlo("mx.example.org")
        c.mail(mail_from)
        c.rcpt("vanthu@phutho.gov.vn")
        return c.data(extra + inbound(sender=header_from))


def test_mx_spf_pass_is_delivered_with_our_authentication_results(zoned_gateway) -> None:
    gw, sink = zoned_gateway
    forged = b"Authentication-Results: mx.phutho.gov.vn; spf=pass; dmarc=pass\r\n" \
             b"X-Mailgw-Policy: allow\r\n"
    code, _ = _send(gw, "doitac@example.org", "doitac@example.org", extra=forged)
    assert code == 250
    _, _, raw = sink.wait_for(1)[0]
    results = [v for v in parse(raw).get_all("Authentication-Results", [])]
    assert len(results) == 1, results  # the forged one is gone, ours is there
    assert "spf=pass" in results[0] and "dmarc=pass" in results[0]
    assert b"X-Mailgw-Policy: allow" not in raw


def test_mx_spoofed_internal_sender_is_held_not_delivered(zoned_gateway) -> None:
    gw, sink = zoned_gateway
    code, reply = _send(gw, "attacker@evil.test", "Chu tich <chutich@phutho.gov.vn>")
    assert code == 250, reply  # accepted and held: the sender learns nothing
    time.sleep(1.5)
    assert sink.messages == []
    with gw.engine.connect() as conn:
        status, detail = conn.execute(text(
            "SELECT status, verdict_detail FROM messages WHERE direction = 'inbound'")).one()
    assert status == "quarantined"
    assert "spoofed_internal_sender" in str(detail)


def test_mx_dns_trouble_is_a_temporary_451(zoned_gateway) -> None:
    gw, _sink = zoned_gateway
    code, reply = _send(gw, "someone@broken.test", "someone@broken.test")
    assert (code, reply[:5]) == (451, b"4.4.3")


def test_mx_foreign_dmarc_reject_is_refused(zoned_gateway) -> None:
    gw, _sink = zoned_gateway
    code, reply = _send(gw, "attacker@evil.test", "doitac@example.org")
    assert (code, reply[:5]) == (550, b"5.7.1")


def test_mx_lookalike_internal_domain_is_flagged_with_a_warning(zoned_gateway) -> None:
    gw, sink = zoned_gateway
    code, _ = _send(gw, "chutich@phutho-gov.vn", "Chu tich UBND <chutich@phutho-gov.vn>")
    assert code == 250
    _, _, raw = sink.wait_for(1)[0]
    delivered = parse(raw)
    assert delivered["X-Mailgw-Warning"], "the recipient must be warned"
    with gw.engine.connect() as conn:
        verdict, detail = conn.execute(text(
            "SELECT verdict, verdict_detail FROM messages WHERE direction = 'inbound'")).one()
    assert verdict == "flag" and "lookalike_domain" in str(detail)
